"""The contact sheet: one self-contained HTML page, one row of face crops per cluster.

A person checks the groups at a glance: a face in the wrong row stands out, and its id (shown on
hover) is what ``faceshot cluster split`` takes. Crops are embedded as JPEG data URIs, so the page
is one file to open or send; it holds faces of the photos, so treat it like the photos.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Callable, Sequence

from faceshot.cluster.crops import face_crops, jpeg
from faceshot.cluster.results import ClusteredFace, Clustering
# The reports' shared page frame (style, settings and versions table).
from faceshot.evaluate.report import html_page

__all__ = ["contact_sheet", "MAX_PER_ROW"]

#: Faces shown per cluster; the rest are counted ("+ 40 more").
MAX_PER_ROW = 60
STYLE = (
    "<style>.row{display:flex;flex-wrap:wrap;gap:3px;margin:.3em 0 1.2em}.row figure{margin:0;font-size:10px;"
    "text-align:center}.row img{height:80px;display:block}.missing{width:64px;height:80px;background:#ddd}</style>"
)


def _cell(face: ClusteredFace, uri: str | None) -> str:
    title = html.escape(f"face {face.id}: {face.source}")
    picture = f"<img src='{uri}' alt='face {face.id}'>" if uri else "<div class='missing'></div>"
    return f"<figure title='{title}'>{picture}<figcaption>{face.id}</figcaption></figure>"


def _row(faces: Sequence[ClusteredFace], stored: Callable[[int], bytes | None] | None) -> str:
    shown = sorted(faces[:MAX_PER_ROW], key=lambda f: (f.source, f.id))  # one read per photo
    cells = []
    for face, crop in face_crops(shown, stored=stored, side=96):
        uri = None if crop is None else "data:image/jpeg;base64," + base64.b64encode(jpeg(crop, 80)).decode()
        cells.append(_cell(face, uri))
    more = f"<p>+ {len(faces) - MAX_PER_ROW} more</p>" if len(faces) > MAX_PER_ROW else ""
    return f"<div class='row'>{''.join(cells)}</div>{more}"


def contact_sheet(
    path: str | Path,
    clustering: Clustering,
    *,
    title: str = "faceshot clusters",
    stored: Callable[[int], bytes | None] | None = None,
) -> Path:
    """Write the HTML contact sheet of ``clustering`` to ``path`` and return the path.

    ``stored(face_id)``: kept thumbnails, used for faces whose photo can no longer be read.
    """
    body = [
        STYLE,
        f"<p>{len(clustering.clusters)} clusters holding {sum(c.size for c in clustering.clusters)} faces; "
        f"{len(clustering.unclustered)} faces unclustered. Hover a face for its photo; the number under it "
        "is its face id.</p>",
    ]
    for cluster in clustering.clusters:
        named = f" — {html.escape(cluster.name)}" if cluster.name else ""
        body.append(f"<h2>Cluster {cluster.id}{named} ({cluster.size} faces)</h2>{_row(cluster.faces, stored)}")
    if clustering.unclustered:
        body.append(f"<h2>Unclustered ({len(clustering.unclustered)} faces)</h2>{_row(clustering.unclustered, stored)}")
    if clustering.failed:
        items = "".join(f"<li>{html.escape(f.reason)}</li>" for f in clustering.failed)
        body.append(f"<h2>Files that could not be used</h2><ul>{items}</ul>")
    if clustering.no_face:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in clustering.no_face)
        body.append(f"<h2>Photos without a face found</h2><ul>{items}</ul>")
    settings = {"algorithm": clustering.algorithm, "threshold (cosine score)": round(clustering.threshold, 4),
                "minimum cluster size": clustering.min_size}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(title, body, settings), encoding="utf-8")
    return path
