"""The ``faceshot`` command: a thin Typer layer over :mod:`faceshot.api`.

Exit codes: ``verify`` exits 0 when the photos show the same person, 1 when they do not; every
command exits 2 on an error (unreadable image, no face, bad option), with the reason on stderr.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from faceshot.api import engine
from faceshot.errors import FaceshotError

app = typer.Typer(
    name="faceshot",
    help="One-shot face recognition: detect, verify and (soon) identify faces, offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)

EXIT_SAME, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2
T = TypeVar("T")


def reports_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Turn faceshot's errors into a one-line message on stderr and exit code 2 (no traceback)."""

    @functools.wraps(command)
    def run(*args: object, **kwargs: object) -> None:
        try:
            command(*args, **kwargs)
        except FaceshotError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
            raise typer.Exit(EXIT_ERROR) from None

    return run


def progress(items: list[T], label: str) -> Iterable[T]:
    """Items one by one, with a progress bar on stderr when there are several."""
    if len(items) < 2:
        yield from items
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=len(items))
        for item in items:
            yield item
            bar.advance(task)


Detector = typer.Option("hog", "--detector", "-d", help="hog: fast, frontal faces. cnn: finds turned faces, slow on CPU.")
Json = typer.Option(False, "--json", help="Print JSON instead of text.")


@app.command()
@reports_errors
def detect(
    images: list[Path] = typer.Argument(..., help="Image files to search for faces."),
    detector: str = Detector,
    as_json: bool = Json,
) -> None:
    """Find the faces in each image: box, detector score and five landmarks.

    Prints CSV (image,face,left,top,right,bottom,score), or with --json one JSON object per image
    per line. A bad image is reported on stderr and the others are still processed (exit code 2).
    """
    runner = engine(detector)
    failed = 0
    if not as_json:
        print("image,face,left,top,right,bottom,score")
    for image in progress(images, "detecting"):
        try:
            faces = runner.detect(image)
        except FaceshotError as exc:
            failed += 1
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            if as_json:
                print(json.dumps({"image": str(image), "error": str(exc), "faces": []}))
            continue
        if as_json:
            print(json.dumps({"image": str(image), "faces": [face.to_dict() for face in faces]}))
            continue
        for number, face in enumerate(faces):
            b = face.box
            print(f"{image},{number},{b.left},{b.top},{b.right},{b.bottom},{face.score:.3f}")
    if failed:
        raise typer.Exit(EXIT_ERROR)


@app.command()
@reports_errors
def verify(
    image_a: Path = typer.Argument(..., help="First photo (e.g. the passport photo)."),
    image_b: Path = typer.Argument(..., help="Second photo (e.g. the camera photo)."),
    threshold: Optional[float] = typer.Option(
        None, "--threshold", "-t", help="Score needed to say 'same'. Higher: fewer strangers accepted, more true matches missed."
    ),
    far: Optional[float] = typer.Option(
        None, "--far", help="Target false-accept rate instead of a threshold, e.g. 0.001 (one stranger in a thousand)."
    ),
    multiple: str = typer.Option(
        "largest", "--multiple", help="With several faces in a photo: compare the 'largest', the 'central' one, or 'error'."
    ),
    detector: str = Detector,
    as_json: bool = Json,
) -> None:
    """Are the two photos the same person? Exit code 0 = same, 1 = different, 2 = error."""
    result = engine(detector).verify(
        image_a, image_b, threshold=threshold, far=far, multiple=multiple  # type: ignore[arg-type]
    )
    if as_json:
        print(json.dumps(result.to_dict()))
    else:
        verdict = "same person" if result.same else "different people"
        relation = ">=" if result.same else "<"
        far_text = f", FAR {result.far:.2g} on LFW" if result.far is not None else ""
        print(f"{verdict}: score {result.score:.3f} {relation} threshold {result.threshold:.3f}{far_text}")
    for note in result.notes:
        err.print(f"note: {note}", highlight=False)
    raise typer.Exit(EXIT_SAME if result.same else EXIT_DIFFERENT)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
