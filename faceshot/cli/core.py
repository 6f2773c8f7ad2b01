"""``faceshot detect`` and ``faceshot verify``: thin adapters over :mod:`faceshot.api`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from faceshot.bulk import detect_files
from faceshot.cli.app import (
    EXIT_ERROR,
    EXIT_NO,
    EXIT_OK,
    DetectorOption,
    EmbedderOption,
    FarOption,
    JsonOption,
    MaxPixelsOption,
    Threshold,
    WorkersOption,
    ThresholdOption,
    app,
    error,
    progress,
    reports_errors,
)
from faceshot.spec import open_engine


@app.command()
@reports_errors
def detect(
    images: list[Path] = typer.Argument(..., help="Image files to search for faces."),
    detector: Optional[str] = DetectorOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    as_json: bool = JsonOption,
    workers: Optional[int] = WorkersOption,
) -> None:
    """Find the faces in each image: box, detector score and five landmarks.

    Prints CSV (image,face,left,top,right,bottom,score), or with --json one JSON object per image
    per line, in the order given. A bad image is reported on stderr and the others are still
    processed (exit code 2). Several images are searched on every core at once.
    """
    failed = 0
    engine = open_engine(detector=detector, max_pixels=max_pixels)  # a bad option fails before any output,
    engine.detector.check()  # and so does a missing model file
    if not as_json:
        print("image,face,left,top,right,bottom,score")
    found = detect_files(images, engine=engine, workers=workers)
    for result in progress(found, "detecting", len(images)):
        if not result.ok:
            failed += 1
            error(result.error)
            if as_json:
                print(json.dumps({"image": result.path, "error": str(result.error), "faces": []}))
            continue
        if as_json:
            print(json.dumps({"image": result.path, "faces": [face.to_dict() for face in result.faces]}))
            continue
        for number, face in enumerate(result.faces):
            b = face.box
            print(f"{result.path},{number},{b.left},{b.top},{b.right},{b.bottom},{face.score:.3f}")
    if failed:
        raise typer.Exit(EXIT_ERROR)


@app.command()
@reports_errors
def verify(
    image_a: Path = typer.Argument(..., help="First photo (e.g. the passport photo)."),
    image_b: Path = typer.Argument(..., help="Second photo (e.g. the camera photo)."),
    threshold: Threshold = ThresholdOption,
    far: Threshold = FarOption,
    multiple: str = typer.Option(
        "largest", "--multiple", help="With several faces in a photo: compare the 'largest', the 'central' one, or 'error'."
    ),
    db: Optional[str] = typer.Option(None, "--db", help="Use the FAR table `faceshot calibrate --db` saved in this gallery (a file or a URL; its threshold by default), and its embedder and engine defaults."),
    embedder: Optional[str] = EmbedderOption,
    detector: Optional[str] = DetectorOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    as_json: bool = JsonOption,
) -> None:
    """Are the two photos the same person? Exit code 0 = same, 1 = different, 2 = error."""
    how = dict(threshold=threshold, far=far, multiple=multiple)
    engine = open_engine(db, detector=detector, embedder=embedder, max_pixels=max_pixels)
    if db is not None:
        from faceshot.gallery import Gallery

        with Gallery(db, engine, create=False) as gallery:
            result = gallery.verify(image_a, image_b, **how)  # type: ignore[arg-type]
    else:
        result = engine.verify(image_a, image_b, **how)  # type: ignore[arg-type]
    if as_json:
        print(json.dumps(result.to_dict()))
    else:
        verdict = "same person" if result.same else "different people"
        relation = ">=" if result.same else "<"
        where = "the gallery's calibration" if db is not None else "the embedder's calibration"
        far_text = f"FAR {result.far:.2g} ({where})" if result.far is not None else "FAR not measured at this threshold"
        if result.clamped:
            far_text += "; clamped: the FAR asked for is beyond what was measured, so its strictest threshold was used"
        print(f"{verdict}: score {result.score:.3f} {relation} threshold {result.threshold:.3f}, {far_text}")
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    raise typer.Exit(EXIT_OK if result.same else EXIT_NO)


