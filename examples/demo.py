"""End-to-end demo on photos the face_recognition package ships: is it the same person?

    python examples/demo.py .cache/test_images      (make demo does this)
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

import faceshot


def main(folder: Path) -> None:
    pairs = [
        ("obama.jpg", "obama2.jpg"),
        ("obama.jpg", "obama3.jpg"),
        ("obama2.jpg", "obama3.jpg"),
        ("obama.jpg", "biden.jpg"),
        ("obama3.jpg", "biden.jpg"),
    ]
    calibration = faceshot.engine().embedder.calibration
    table = Table(title="faceshot verify: one photo against another")
    for column in ("photo A", "photo B", "score", "decision"):
        table.add_column(column)
    for a, b in pairs:
        result = faceshot.verify(folder / a, folder / b)
        decision = "[green]same person[/green]" if result.same else "[yellow]different people[/yellow]"
        table.add_row(a, b, f"{result.score:.3f}", decision)
    console = Console()
    console.print(table)
    console.print(
        f"score = cosine similarity of the two face embeddings; threshold {calibration.threshold:.3f} "
        f"(chosen on LFW View 1; false-accept rate {calibration.far_at(calibration.threshold):.2%} on LFW impostor pairs)"
    )
    strict = faceshot.verify(folder / "obama.jpg", folder / "obama2.jpg", far=1e-4)
    console.print(
        f"asked at FAR 0.01% instead: threshold {strict.threshold:.3f}, obama vs obama2 -> "
        f"{'same' if strict.same else 'different'} (score {strict.score:.3f})"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/test_images"))
