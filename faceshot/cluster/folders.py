"""``--out``: a folder per cluster holding its face crops (or links to the photos), to browse in any file viewer."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Callable

from faceshot.cluster.crops import face_crops
from faceshot.cluster.results import ClusteredFace, Clustering

__all__ = ["write_folders"]

log = logging.getLogger(__name__)


def _folder_name(cluster_id: int, name: str | None) -> str:
    label = f"cluster-{cluster_id:04d}"
    if name:
        label += "-" + re.sub(r"[^\w.-]+", "_", name).strip("_")
    return label


def write_folders(
    clustering: Clustering,
    out: str | Path,
    *,
    links: bool = False,
    stored: Callable[[int], bytes | None] | None = None,
) -> Path:
    """Write ``cluster-NNNN[-name]/`` per cluster and ``unclustered/`` under ``out``.

    Each face becomes ``<face id>_<photo name>.jpg``, a crop around the face; with ``links``, a
    symbolic link to the whole photo instead (a photo with two people then appears in both
    folders). Existing files of the same name are replaced; nothing else in ``out`` is touched.
    """
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    groups: list[tuple[str, tuple[ClusteredFace, ...]]] = [
        (_folder_name(c.id, c.name), c.faces) for c in clustering.clusters
    ]
    if clustering.unclustered:
        groups.append(("unclustered", clustering.unclustered))
    for folder_name, faces in groups:
        folder = root / folder_name
        folder.mkdir(exist_ok=True)
        ordered = sorted(faces, key=lambda f: (f.source, f.id))
        if links:
            for face in ordered:
                target = folder / f"{face.id}_{Path(face.source).name}"
                target.unlink(missing_ok=True)
                target.symlink_to(os.path.abspath(face.source))
            continue
        for face, crop in face_crops(ordered, stored=stored):
            if crop is None:
                log.warning("%s: photo unreadable, no crop written for face %d", face.source, face.id)
                continue
            crop.convert("RGB").save(folder / f"{face.id}_{Path(face.source).stem}.jpg", quality=90)
    return root
