"""End-to-end demo on photos that Python packages ship: one-shot enrollment, then open-set identification.

    python examples/demo.py .cache/test_images      (make demo does this)

Enrolls Barack Obama and Joe Biden from one photo each (face_recognition's test photos), then
identifies their other photos and a group photo of people never enrolled (insightface's t1.jpg),
who must all come out "unknown". Also shows 1:1 verification with its operating point.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

import faceshot

OUT = Path("out")


def main(folder: Path) -> None:
    console = Console()
    OUT.mkdir(exist_ok=True)
    database = OUT / "demo.db"
    for stale in OUT.glob("demo.db*"):
        stale.unlink()  # start from an empty gallery every run

    with faceshot.Gallery(database) as gallery:
        for name, photo in (("Barack Obama", "obama.jpg"), ("Joe Biden", "biden.jpg")):
            result = gallery.enroll(name, folder / photo)
            console.print(f"enrolled [bold]{name}[/bold] from one photo ({photo}): {len(result.added)} face")

        table = Table(title="faceshot identify: who is in each photo?")
        for column in ("photo", "face", "identity", "score", "best candidate"):
            table.add_column(column)
        for photo in ("obama2.jpg", "obama3.jpg", "insightface_t1.jpg"):
            pixels = faceshot.load_image(folder / photo)
            found = gallery.identify(pixels)
            for number, item in enumerate(found):
                best = item.candidates[0] if item.candidates else ("-", 0.0)
                identity = f"[green]{item.identity}[/green]" if item.known else "[yellow]unknown[/yellow]"
                table.add_row(photo, str(number), identity, f"{item.score:.3f}", f"{best[0]} ({best[1]:.3f})")
            faceshot.annotate(pixels, found).save(OUT / f"{Path(photo).stem}.annotated.jpg", quality=90)
        console.print(table)
        threshold = gallery.operating_point().threshold
        console.print(
            f"score = cosine similarity of face embeddings; a face is named when its best score is at least "
            f"{threshold:.3f} (the threshold at which 1% of strangers would be named by a gallery of "
            f"{sum(person.faces for person in gallery.people())} faces; it rises as the gallery grows), else it is unknown. "
            f"Annotated photos are in {OUT}/."
        )

    verification = faceshot.verify(folder / "obama.jpg", folder / "obama2.jpg")
    console.print(
        f"verify obama.jpg obama2.jpg: {'same person' if verification.same else 'different people'} "
        f"(score {verification.score:.3f}, threshold {verification.threshold:.3f}, "
        f"false-accept rate {verification.far:.2%} on LFW)"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/test_images"))
