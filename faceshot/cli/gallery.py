"""Gallery commands: ``enroll``, ``enroll-dir``, ``identify``, ``people …`` and ``gallery …``.

Thin adapters over :class:`faceshot.gallery.Gallery`; every decision is made there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from faceshot.annotate import annotate
from faceshot.cli.app import (
    EXIT_ERROR,
    EXIT_NO,
    DbOption,
    FarOption,
    JsonOption,
    Threshold,
    ThresholdOption,
    WorkersOption,
    app,
    err,
    error,
    progress,
    progress_bar,
    reports_errors,
)
from faceshot.errors import FaceshotError
from faceshot.gallery import DirProgress, Gallery

out = Console(soft_wrap=True, highlight=False)
people_app = typer.Typer(help="List, inspect and correct the people in a gallery.", no_args_is_help=True)
gallery_app = typer.Typer(help="Check, rebuild, export and import a gallery.", no_args_is_help=True)
app.add_typer(people_app, name="people")
app.add_typer(gallery_app, name="gallery")

GroupOption = typer.Option([], "--group", "-g", help="Group (tag) the person joins; repeat for several.")
ForceOption = typer.Option(False, "--force", help="Skip the quality gate; with several faces, take the largest.")
ThumbnailOption = typer.Option(False, "--keep-thumbnail", help="Also keep a small JPEG of each face (off: no image is stored).")
EmbedderOption = typer.Option(
    None, "--embedder", help="A model from `faceshot train` (.onnx) or an embedder name; default: the gallery's own."
)


def open_gallery(db: Optional[Path], embedder: Optional[str]) -> Gallery:
    """The gallery, with the embedder asked for (it refuses one of another space) or its own."""
    if embedder is None:
        return Gallery(db)
    from faceshot.api import engine

    return Gallery(db, engine=engine(embedder=embedder))


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
    db: Optional[Path] = DbOption,
    embedder: Optional[str] = EmbedderOption,
    as_json: bool = JsonOption,
) -> None:
    """Enroll a person from one photo or a few. Rejected photos are listed with the reason (exit 2)."""
    with open_gallery(db, embedder) as gallery:
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
        if not result.added and not result.skipped:
            err.print("nothing enrolled; --force accepts photos the quality gate refuses")
        raise typer.Exit(EXIT_ERROR)


@app.command("enroll-dir")
@reports_errors
def enroll_dir(
    folder: Path = typer.Argument(..., help="A folder with one sub-folder of photos per person, named after them."),
    group: list[str] = GroupOption,
    force: bool = ForceOption,
    keep_thumbnail: bool = ThumbnailOption,
    workers: Optional[int] = WorkersOption,
    db: Optional[Path] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Enroll every person in a folder. Resumable: photos already enrolled are skipped.

    Bad photos are reported and skipped; exit code 1 when any failed, 0 when none did.
    """
    with Gallery(db) as gallery, progress_bar() as bar:
        task = bar.add_task("enrolling", total=None)

        def advance(step: DirProgress) -> None:
            bar.update(task, completed=step.done, total=step.total, description=f"enrolling {step.person}")

        summary = gallery.enroll_dir(folder, groups=group, force=force, keep_thumbnail=keep_thumbnail,
                                     workers=workers, progress=advance)
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
        None, "--annotate", help="Write a copy of the photo with boxes and names (a folder when several photos)."
    ),
    db: Optional[Path] = DbOption,
    embedder: Optional[str] = EmbedderOption,
    as_json: bool = JsonOption,
) -> None:
    """Who is in each photo? Every face gets a name, or 'unknown' when nobody enrolled matches."""
    failed = 0
    with open_gallery(db, embedder) as gallery:
        for image in progress(images, "identifying"):
            try:
                pixels = gallery.engine.load(image)
                found = gallery.identify(pixels, top_k=top_k, threshold=threshold, far=far, fpir=fpir, group=group)
            except FaceshotError as exc:
                failed += 1
                error(exc)
                if as_json:
                    show_json({"image": str(image), "error": str(exc), "faces": []})
                continue
            if as_json:
                show_json({"image": str(image), "faces": [item.to_dict() for item in found]})
            else:
                table = Table(title=str(image), title_justify="left")
                for column in ("face", "identity", "score", "candidates"):
                    table.add_column(column)
                for number, item in enumerate(found):
                    table.add_row(
                        str(number),
                        item.identity or "[red]unknown[/red]",
                        "" if item.score is None else f"{item.score:.3f}",
                        ", ".join(f"{name} {score:.3f}" for name, score in item.candidates),
                    )
                out.print(table if found else f"{image}: no face found")
            if annotate_to is not None:
                target = annotate_to / f"{image.stem}.annotated.jpg" if len(images) > 1 else annotate_to
                target.parent.mkdir(parents=True, exist_ok=True)
                annotate(pixels, found).save(target, quality=90)
    if failed:
        raise typer.Exit(EXIT_ERROR)


@people_app.command("list")
@reports_errors
def people_list(db: Optional[Path] = DbOption, as_json: bool = JsonOption) -> None:
    """Everyone enrolled, with their face counts and groups."""
    with Gallery(db) as gallery:
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
def people_show(name: str, db: Optional[Path] = DbOption) -> None:
    """One person's details and faces (as JSON)."""
    with Gallery(db) as gallery:
        show_json(gallery.person(name).to_dict())


@people_app.command("rename")
@reports_errors
def people_rename(old: str, new: str, db: Optional[Path] = DbOption) -> None:
    """Rename a person."""
    with Gallery(db) as gallery:
        gallery.rename(old, new)
    out.print(f"renamed {old} to {new}")


@people_app.command("merge")
@reports_errors
def people_merge(source: str, target: str, db: Optional[Path] = DbOption) -> None:
    """Move all of SOURCE's faces and groups to TARGET, then delete SOURCE."""
    with Gallery(db) as gallery:
        moved = gallery.merge(source, target)
    out.print(f"merged {source} into {target}: {moved} face(s) moved")


@people_app.command("remove")
@reports_errors
def people_remove(name: str, db: Optional[Path] = DbOption) -> None:
    """Delete a person and every vector of theirs."""
    with Gallery(db) as gallery:
        removed = gallery.delete(name)
    out.print(f"removed {name} and {removed} face(s)")


@people_app.command("remove-face")
@reports_errors
def people_remove_face(face_id: int, db: Optional[Path] = DbOption) -> None:
    """Remove one face (by its id, from `people show`)."""
    with Gallery(db) as gallery:
        name = gallery.remove_face(face_id)
    out.print(f"removed face {face_id} of {name}")


@gallery_app.command("check")
@reports_errors
def gallery_check(db: Optional[Path] = DbOption, as_json: bool = JsonOption) -> None:
    """Compare the search index with the database; exit 1 when they disagree."""
    with Gallery(db) as gallery:
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
def gallery_rebuild(db: Optional[Path] = DbOption) -> None:
    """Rebuild the search index from the database."""
    with Gallery(db) as gallery:
        report = gallery.rebuild()
    out.print(f"rebuilt: {report.indexed} faces indexed")


@gallery_app.command("export")
@reports_errors
def gallery_export(path: Path, db: Optional[Path] = DbOption) -> None:
    """Write people, groups and embeddings (no photos) to a JSON Lines file."""
    with Gallery(db) as gallery:
        summary = gallery.export(path)
    out.print(f"exported {summary.people} people, {summary.faces} faces to {summary.path}")


@gallery_app.command("import")
@reports_errors
def gallery_import(path: Path, db: Optional[Path] = DbOption) -> None:
    """Read a file written by `gallery export` (all or nothing)."""
    with Gallery(db) as gallery:
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
    db: Optional[Path] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Show the search index of a gallery, or change it with --kind (built at the next search)."""
    with Gallery(db) as gallery:
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
