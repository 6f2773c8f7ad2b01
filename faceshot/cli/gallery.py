"""Gallery commands: ``enroll``, ``enroll-dir``, ``identify``, ``people …`` and ``gallery …``.

Thin adapters over :class:`faceshot.gallery.Gallery`; every decision is made there.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from faceshot.annotate import annotate, font_for
from faceshot.cli.app import (
    ActorsOption,
    AddressOption,
    EXIT_ERROR,
    EXIT_NO,
    GalleryOption,
    DetectorOption,
    EmbedderOption,
    FarOption,
    JsonOption,
    MaxPixelsOption,
    RunnerName,
    RunnerOption,
    Threshold,
    ThresholdOption,
    WorkersOption,
    app,
    err,
    error,
    open_runner,
    out,
    progress,
    progress_bar,
    reports_errors,
)
from faceshot.errors import ConfigError, FaceshotError, NotFound
from faceshot.gallery import DirProgress, Gallery
from faceshot.gallery.gallery import DEFAULT_PATH, ENVIRONMENT_VARIABLE
from faceshot.gallery.location import Location, parse_location
from faceshot.gallery.migrate import migrate
from faceshot.spec import open_engine


def gallery_location(db: Optional[str]) -> Location:
    """The gallery a command uses: ``--db`` (a path or URL), else ``$FACESHOT_DB``, else ``./faceshot.db`` (as :class:`Gallery`)."""
    return parse_location(db or os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_PATH)

people_app = typer.Typer(help="List, inspect and correct the people in a gallery.", no_args_is_help=True)
gallery_app = typer.Typer(help="Check, rebuild, export and import a gallery.", no_args_is_help=True)
app.add_typer(people_app, name="people")
app.add_typer(gallery_app, name="gallery")

GroupOption = typer.Option([], "--group", "-g", help="Group (tag) the person joins; repeat for several.")
ForceOption = typer.Option(False, "--force", help="Skip the quality gate; with several faces, take the largest.")
ThumbnailOption = typer.Option(False, "--keep-thumbnail", help="Also keep a small JPEG of each face (off: no image is stored).")


def open_gallery(
    db: Optional[Path],
    detector: Optional[str] = None,
    embedder: Optional[str] = None,
    max_pixels: Optional[int] = None,
    *,
    create: bool = False,
) -> Gallery:
    """The gallery, with the engine resolved from the flags, the environment and its own settings
    (an embedder of another vector space is refused when it opens). Only the commands that make
    galleries (enroll, enroll-dir, gallery import, calibrate --db, cluster --db) pass ``create``;
    every other command refuses a missing file (exit 2) instead of making an empty one."""
    location = gallery_location(db)
    if not create and not location.exists():
        raise NotFound(f"{location}: no such gallery; enroll someone first (faceshot enroll NAME PHOTO --db {location})")
    return Gallery(location, engine=open_engine(location, detector=detector, embedder=embedder, max_pixels=max_pixels),
                   create=create)


def operating_point_line(found: Any) -> str:
    """How sure a name had to be: the threshold and the rates it stands for (one line)."""
    rates = []
    if found.fpir is not None:
        rates.append(f"FPIR {found.fpir:.2g}")
    rates.append("FAR not measured at this threshold" if found.far is None else f"FAR {found.far:.2g} per comparison")
    note = " (clamped: the asked rate is beyond what the calibration measured)" if found.clamped else ""
    return f"threshold {found.threshold:.4f}: {', '.join(rates)}{note}"


def show_json(data: Any) -> None:
    print(json.dumps(data))


@app.command()
@reports_errors
def enroll(
    name: str = typer.Argument(..., help="The person's name."),
    images: list[Path] = typer.Argument(..., help="One or more photos of them, one face each."),
    group: list[str] = GroupOption,
    force: bool = ForceOption,
    keep_thumbnail: bool = ThumbnailOption,
    db: Optional[str] = GalleryOption,
    detector: Optional[str] = DetectorOption,
    embedder: Optional[str] = EmbedderOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    as_json: bool = JsonOption,
) -> None:
    """Enroll a person from one photo or a few. Rejected photos are listed with the reason (exit 2)."""
    with open_gallery(db, detector, embedder, max_pixels, create=True) as gallery:
        result = gallery.enroll(name, images, groups=group, force=force, keep_thumbnail=keep_thumbnail)
    if as_json:
        show_json(result.to_dict())
    else:
        verb = "enrolled" if result.created else "added to"
        if result.added or result.skipped:
            out.print(f"{verb} {name}: {len(result.added)} face(s) added, {len(result.skipped)} already enrolled")
    for rejected in result.rejected:
        error(f"rejected: {rejected.reason}")
    if result.rejected:
        refused = {rejected.error for rejected in result.rejected} & {"QualityError", "MultipleFacesError"}
        if not result.added and not result.skipped and refused:
            err.print("nothing enrolled; --force accepts photos the quality gate refuses")
        raise typer.Exit(EXIT_ERROR)


@app.command("enroll-dir")
@reports_errors
def enroll_dir(
    folder: str = typer.Argument(
        ..., help="A folder with one sub-folder of photos per person, named after them (with --runner ray, also an fsspec URL such as s3://bucket/people)."
    ),
    group: list[str] = GroupOption,
    force: bool = ForceOption,
    keep_thumbnail: bool = ThumbnailOption,
    workers: Optional[int] = WorkersOption,
    runner: RunnerName = RunnerOption,
    address: Optional[str] = AddressOption,
    actors: Optional[int] = ActorsOption,
    batch: int = typer.Option(64, "--batch", min=1, help="Faces written per transaction: what an interruption can lose."),
    db: Optional[str] = GalleryOption,
    detector: Optional[str] = DetectorOption,
    embedder: Optional[str] = EmbedderOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    as_json: bool = JsonOption,
) -> None:
    """Enroll every person in a folder. Resumable: photos already enrolled are skipped.

    Bad photos are reported and skipped; exit code 1 when any failed, 0 when none did.
    """
    with ExitStack() as stack:
        chosen = open_runner(stack, runner, address, actors, workers)
        gallery = stack.enter_context(open_gallery(db, detector, embedder, max_pixels, create=True))
        bar = stack.enter_context(progress_bar())
        task = bar.add_task("enrolling", total=None)

        def advance(step: DirProgress) -> None:
            bar.update(task, completed=step.done, total=step.total, description=f"enrolling {step.person}")

        summary = gallery.enroll_dir(folder, groups=group, force=force, keep_thumbnail=keep_thumbnail,
                                     workers=workers, progress=advance, runner=chosen, batch=batch)
    if as_json:
        show_json(summary.to_dict())
    else:
        out.print(
            f"{summary.enrolled} face(s) enrolled for {sum(1 for p in summary.people if p.added)} people, "
            f"{summary.skipped} already enrolled, {len(summary.failed)} failed"
        )
    for failure in summary.failed:
        err.print(f"failed: {failure.reason}")
    if summary.failed:
        raise typer.Exit(EXIT_NO)


def check_annotation_target(target: Path, *, several: bool) -> None:
    """Refuse an --annotate target before any work: one photo needs an image file name Pillow can
    write (.jpg, .png, ...), several photos a folder (made if missing), never an existing file."""
    from PIL import Image

    if several:
        if target.exists() and not target.is_dir():
            raise ConfigError(f"--annotate {target}: several photos need a folder, and this is a file")
        return
    if target.is_dir():
        raise ConfigError(f"--annotate {target}: a folder; with one photo give the file to write, e.g. {target / 'annotated.jpg'}")
    if Image.registered_extensions().get(target.suffix.lower()) not in Image.SAVE:
        raise ConfigError(f"--annotate {target}: unknown image extension {target.suffix or '(none)'}; use .jpg or .png")


def annotation_files(folder: Path, images: list[Path]) -> list[Path]:
    """Where --annotate writes each of several photos' copies: ``NAME.annotated.jpg`` in ``folder``,
    ``NAME-2.annotated.jpg`` and so on for a later photo of the same name (from another folder, or
    another extension), so that no copy overwrites another."""
    files, taken = [], set()
    for image in images:
        stem, number = image.stem, 1
        while (name := f"{stem}{'' if number == 1 else f'-{number}'}.annotated.jpg").lower() in taken:
            number += 1
        taken.add(name.lower())
        files.append(folder / name)
    return files


@app.command()
@reports_errors
def identify(
    images: list[Path] = typer.Argument(..., help="Photos to search for enrolled people."),
    group: Optional[str] = typer.Option(None, "--group", "-g", help="Compare only with the members of this group."),
    top_k: int = typer.Option(3, "--top-k", "-k", min=1, help="Candidates to list per face."),
    threshold: Threshold = ThresholdOption,
    far: Threshold = FarOption,
    fpir: Threshold = typer.Option(
        None, "--fpir", help="Share of strangers who may be named as someone (default 0.01); the threshold grows with the people searched."
    ),
    annotate_to: Optional[Path] = typer.Option(
        None, "--annotate", help="Write a copy of the photo with boxes and names (a folder when several photos: NAME.annotated.jpg each, NAME-2... for a repeated name)."
    ),
    font: Optional[Path] = typer.Option(
        None, "--font", help="With --annotate: a TrueType/OpenType file to draw names with (default: an installed font that has their characters)."
    ),
    db: Optional[str] = GalleryOption,
    detector: Optional[str] = DetectorOption,
    embedder: Optional[str] = EmbedderOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    as_json: bool = JsonOption,
    workers: Optional[int] = WorkersOption,
) -> None:
    """Who is in each photo? Every face gets a name, or 'unknown' when nobody enrolled matches.

    Several photos are searched on every core at once and reported in the order given.
    """
    if font is not None:
        font_for("", 12, font)  # a font file that cannot be read is refused before any work
    if annotate_to is not None:
        check_annotation_target(annotate_to, several=len(images) > 1)
        targets = annotation_files(annotate_to, images) if len(images) > 1 else [annotate_to]
    failed = 0
    with open_gallery(db, detector, embedder, max_pixels) as gallery:
        gallery.engine.detector.check()  # a missing model file: one error, not one per photo
        results = gallery.identify_files(images, workers=workers, top_k=top_k, threshold=threshold, far=far,
                                         fpir=fpir, group=group)
        # The bar first in zip: it is asked once more after the last photo, and counts that one too.
        for number, (result, image) in enumerate(zip(progress(results, "identifying", len(images)), images)):
            found = result.found
            if result.error is not None:
                failed += 1
                error(result.error)
                if as_json:
                    show_json({"image": str(image), "error": str(result.error), "faces": []})
                continue
            if as_json:
                show_json({"image": str(image), "faces": [item.to_dict() for item in found]})
            else:
                table = Table(title=str(image), title_justify="left")
                for column in ("face", "identity", "score", "candidates"):
                    table.add_column(column)
                for face_number, item in enumerate(found):
                    table.add_row(
                        str(face_number),
                        item.identity or Text("unknown", style="red"),
                        "" if item.score is None else f"{item.score:.3f}",
                        ", ".join(f"{name} {score:.3f}" for name, score in item.candidates),
                    )
                out.print(table if found else f"{image}: no face found")
                if found:
                    out.print(operating_point_line(found[0]))
            if annotate_to is not None:
                target = targets[number]
                target.parent.mkdir(parents=True, exist_ok=True)
                annotate(gallery.engine.load(image), found, font=font).save(target, quality=90)
    if failed:
        raise typer.Exit(EXIT_ERROR)


@people_app.command("list")
@reports_errors
def people_list(db: Optional[str] = GalleryOption, as_json: bool = JsonOption) -> None:
    """Everyone enrolled, with their face counts and groups."""
    with open_gallery(db) as gallery:
        people = gallery.people()
    if as_json:
        show_json([person.to_dict() for person in people])
        return
    table = Table()
    for column in ("name", "faces", "groups"):
        table.add_column(column)
    for person in people:
        data = person.to_dict()
        table.add_row(data["name"], str(data["faces"]), ", ".join(data["groups"]))
    out.print(table)


@people_app.command("show")
@reports_errors
def people_show(name: str, db: Optional[str] = GalleryOption) -> None:
    """One person's details and faces (as JSON)."""
    with open_gallery(db) as gallery:
        show_json(gallery.person(name).to_dict())


@people_app.command("rename")
@reports_errors
def people_rename(old: str, new: str, db: Optional[str] = GalleryOption) -> None:
    """Rename a person."""
    with open_gallery(db) as gallery:
        gallery.rename(old, new)
    out.print(f"renamed {old} to {new}")


@people_app.command("merge")
@reports_errors
def people_merge(source: str, target: str, db: Optional[str] = GalleryOption) -> None:
    """Move all of SOURCE's faces and groups to TARGET, then delete SOURCE."""
    with open_gallery(db) as gallery:
        moved = gallery.merge(source, target)
    out.print(f"merged {source} into {target}: {moved} face(s) moved")


@people_app.command("remove")
@reports_errors
def people_remove(name: str, db: Optional[str] = GalleryOption) -> None:
    """Delete a person and every vector of theirs."""
    with open_gallery(db) as gallery:
        removed = gallery.delete(name)
    out.print(f"removed {name} and {removed} face(s)")


@people_app.command("remove-face")
@reports_errors
def people_remove_face(face_id: int, db: Optional[str] = GalleryOption) -> None:
    """Remove one face (by its id, from `people show`)."""
    with open_gallery(db) as gallery:
        name = gallery.remove_face(face_id)
    out.print(f"removed face {face_id} of {name}")


@gallery_app.command("check")
@reports_errors
def gallery_check(db: Optional[str] = GalleryOption, as_json: bool = JsonOption) -> None:
    """Compare the search index with the database; exit 1 when they disagree."""
    with open_gallery(db) as gallery:
        report = gallery.check()
    if as_json:
        show_json(report.to_dict())
    else:
        out.print(f"{report.people} people, {report.faces} faces, {report.indexed} indexed; index file {report.index_file}")
        for problem in report.problems:
            err.print(f"problem: {problem}")
    if not report.ok:
        raise typer.Exit(EXIT_NO)


@gallery_app.command("rebuild")
@reports_errors
def gallery_rebuild(db: Optional[str] = GalleryOption) -> None:
    """Rebuild the search index from the database."""
    with open_gallery(db) as gallery:
        report = gallery.rebuild()
    out.print(f"rebuilt: {report.indexed} faces indexed")


@gallery_app.command("export")
@reports_errors
def gallery_export(path: Path, db: Optional[str] = GalleryOption) -> None:
    """Write people, groups and embeddings (no photos) to a JSON Lines file."""
    with open_gallery(db) as gallery:
        summary = gallery.export(path)
    out.print(f"exported {summary.people} people, {summary.faces} faces to {summary.path}")


@gallery_app.command("import")
@reports_errors
def gallery_import(path: Path, db: Optional[str] = GalleryOption) -> None:
    """Read a file written by `gallery export` (all or nothing)."""
    with Gallery(gallery_location(db)) as gallery:
        summary = gallery.import_(path)
    out.print(f"imported {summary.faces} faces for {summary.people} people ({summary.skipped} already present)")


@gallery_app.command("index")
@reports_errors
def gallery_index(
    kind: Optional[str] = typer.Option(
        None,
        "--kind",
        help="Set the index: auto (by gallery size), flat (exact), hnsw, ivfpq, or a FAISS factory string "
        "such as 'HNSW32,Flat'; search parameters after a colon: 'hnsw:efSearch=128', 'ivfpq:nprobe=32,rerank=100'.",
    ),
    db: Optional[str] = GalleryOption,
    as_json: bool = JsonOption,
) -> None:
    """Show the search index of a gallery, or change it with --kind (built at the next search)."""
    with open_gallery(db) as gallery:
        store = gallery.store
        if not hasattr(store, "index_info"):
            raise FaceshotError(f"the {type(store).__name__} backend chooses its own index")
        if kind is not None:
            store.set_index(kind)
        info = store.index_info()
    if as_json:
        show_json(info)
        return
    file = info["file"]
    held = f"{file['kind']} index of {file['count']} faces at change {file['generation']}" if isinstance(file, dict) else file
    out.print(f"index {info['configured']} (resolves to {info['resolves_to']} at {info['faces']} faces); file: {held}")


@gallery_app.command("migrate")
@reports_errors
def gallery_migrate(
    source: str = typer.Argument(..., help="The gallery to copy: a file path or a URL (postgresql://…)."),
    destination: str = typer.Argument(..., help="Where to copy it: a new gallery's path or URL, or an interrupted copy's."),
    batch: int = typer.Option(200, "--batch", min=1, help="People per transaction (an interruption loses at most one batch)."),
    as_json: bool = JsonOption,
) -> None:
    """Copy a gallery to another backend or place: people, faces with their vectors, groups,
    settings and API keys. Rerun it after an interruption: it carries on without duplicates."""
    with progress_bar() as bar:
        task = bar.add_task("migrating", total=None)
        summary = migrate(source, destination, batch=batch,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        show_json(summary.to_dict())
        return
    out.print(
        f"copied {summary.people} people ({summary.faces} faces), {summary.settings} settings and {summary.keys} keys "
        f"from {summary.source} to {summary.destination}"
        + (f"; {summary.skipped} people were already there from an earlier run" if summary.skipped else "")
    )
