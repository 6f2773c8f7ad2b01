"""``faceshot cluster``: group the faces of unlabeled photos, then list, name, merge and split the groups.

Thin adapters over :class:`faceshot.cluster.Collection`; every decision is made there.

``faceshot cluster DIR...`` runs the clustering; ``faceshot cluster list|name|merge|split`` manage
saved clusters. Click would read ``DIR`` as the name of a subcommand, so the group routes any first
argument that is not a subcommand to ``run`` (a folder named like a subcommand: ``cluster run list``).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table
from typer.core import TyperGroup

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
    WorkersOption,
    app,
    err,
    error,
    open_runner,
    out,
    progress_bar,
    reports_errors,
)
from faceshot.cluster import Clustering, Collection, clusterers, contact_sheet, write_folders
from faceshot.gallery import Gallery
from faceshot.spec import open_engine


class RunByDefault(TyperGroup):
    """A group whose first argument, when not one of its subcommands, goes to the ``run`` command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: a click Context (Typer may vendor click)
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


cluster_app = typer.Typer(
    cls=RunByDefault,
    no_args_is_help=True,
    help="Group the faces of unlabeled photos by person (`faceshot cluster DIR...`), then name a group "
    "to enroll it. Subcommands manage clusters saved with --db.",
)
app.add_typer(cluster_app, name="cluster")

ClusterDbOption = typer.Option(
    None, "--db", help="Gallery (a file or a postgresql:// URL) to keep the clusters in, so that later photos join them "
    "(default: keep nothing)."
)


def show_json(data: Any) -> None:
    print(json.dumps(data))


def print_clustering(result: Clustering, *, samples: int = 3, rows: int = 50) -> None:
    table = Table()
    for column in ("cluster", "name", "faces", "photos (first few)"):
        table.add_column(column)
    if len(result.clusters) > rows:
        table.caption = f"the {rows} largest of {len(result.clusters)} clusters; --json lists them all"
    for cluster in result.clusters[:rows]:
        photos = list(dict.fromkeys(face.source for face in cluster.faces))
        shown = ", ".join(Path(p).name for p in photos[:samples]) + (" …" if len(photos) > samples else "")
        table.add_row(str(cluster.id), cluster.name or "", str(cluster.size), shown)
    if result.clusters:
        out.print(table)
    out.print(
        f"{len(result.clusters)} cluster(s) of {sum(c.size for c in result.clusters)} faces, "
        f"{len(result.unclustered)} face(s) unclustered "
        f"({result.algorithm}, threshold {'none' if result.threshold is None else f'{result.threshold:.3f}'}, "
        f"at least {result.min_size} faces a cluster)"
    )


@cluster_app.command("run")
@reports_errors
def run(
    folders: list[Path] = typer.Argument(..., help="Folders (searched recursively) and photos to cluster."),
    min_size: Optional[int] = typer.Option(
        None, "--min-size", min=1, help="Fewest faces a cluster may have; smaller groups stay unclustered (default 2)."
    ),
    threshold: Threshold = typer.Option(
        None, "--threshold", "-t",
        help="Score two faces need to be linked (cosine, as verify). Higher: purer clusters, more faces left alone. "
        "Default: the one a --db collection used last, else the embedder's score at FAR 7.4e-5 "
        "(0.945 for dlib-resnet), chosen on LFW.",
    ),
    far: Threshold = FarOption,
    algorithm: Optional[str] = typer.Option(
        None, "--algorithm", "-a", help=f"One of: {', '.join(clusterers.names())} (default chinese-whispers)."
    ),
    out_folder: Optional[Path] = typer.Option(None, "--out", help="Write a folder of face crops per cluster here."),
    links: bool = typer.Option(False, "--links", help="With --out: link to the whole photos instead of writing crops."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write an HTML contact sheet, one row per cluster."),
    keep_thumbnails: bool = typer.Option(
        False, "--keep-thumbnails", help="With --db: also keep a small JPEG of each face (off: no image is stored)."
    ),
    workers: Optional[int] = WorkersOption,
    runner: RunnerName = RunnerOption,
    address: Optional[str] = AddressOption,
    actors: Optional[int] = ActorsOption,
    detector: Optional[str] = DetectorOption,
    embedder: Optional[str] = EmbedderOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    db: Optional[str] = ClusterDbOption,
    as_json: bool = JsonOption,
) -> None:
    """Detect and embed every face, group the faces by person and print the groups.

    With --db, photos seen before are skipped and new faces join the saved clusters. Files that
    cannot be read are listed on stderr and the rest are clustered (exit code 1 when any failed).
    """
    with ExitStack() as stack:
        chosen = open_runner(stack, runner, address, actors, workers)
        engine = open_engine(db, detector=detector, embedder=embedder, max_pixels=max_pixels)
        collection = stack.enter_context(Collection(db, engine, algorithm=algorithm, threshold=threshold, far=far,
                                                    min_size=min_size, keep_thumbnails=keep_thumbnails,
                                                    workers=workers, runner=chosen))
        bar = stack.enter_context(progress_bar())
        task = bar.add_task("finding faces", total=None)
        result = collection.add(folders, progress=lambda done, total: bar.update(task, completed=done, total=total))
        if out_folder is not None:
            write_folders(result, out_folder, links=links, stored=collection.thumbnail)
        if report is not None:
            contact_sheet(report, result, stored=collection.thumbnail)
    if as_json:
        show_json(result.to_dict())
    else:
        skipped = f", {result.skipped} seen before and skipped" if result.skipped else ""
        out.print(f"{result.photos} photo(s): {result.added} new face(s){skipped}, "
                  f"{result.joined} joined existing clusters")
        print_clustering(result)
        for label, written in (("contact sheet", report), ("folders", out_folder)):
            if written is not None:
                out.print(f"{label}: {written}")
    if result.no_face:
        err.print(f"no face found in {len(result.no_face)} photo(s)" +
                  ("" if result.faces else "; nothing to cluster"))
    for failure in result.failed:
        error(failure.reason)
    if result.failed:
        raise typer.Exit(EXIT_NO)


@cluster_app.command("list")
@reports_errors
def list_clusters(db: Optional[str] = GalleryOption, as_json: bool = JsonOption) -> None:
    """The saved clusters, largest first (with --json, every face with its id, photo and box)."""
    with Collection.saved(db) as collection:
        result = collection.clustering()
    if as_json:
        show_json(result.to_dict())
    else:
        print_clustering(result)


@cluster_app.command("name")
@reports_errors
def name(
    cluster: int = typer.Argument(..., help="Cluster id (from `faceshot cluster list`)."),
    person: str = typer.Argument(..., help="The person's name."),
    force: bool = typer.Option(False, "--force", help="Skip the gallery's quality gate."),
    db: Optional[str] = GalleryOption,
    as_json: bool = JsonOption,
) -> None:
    """Enroll every face of a cluster in the gallery as PERSON, through the quality gate.

    Refused faces are listed; exit code 2 when none could be enrolled. Naming again enrolls the
    faces that joined the cluster since.
    """
    with Collection.saved(db) as collection, Gallery(collection.db, collection.engine) as gallery:
        naming = collection.name(cluster, person, gallery, force=force)
    result = naming.enrollment
    if as_json:
        show_json(naming.to_dict())
    else:
        out.print(f"cluster {cluster} named {person}: {len(result.added)} face(s) enrolled, "
                  f"{len(result.skipped)} already enrolled, {len(result.rejected)} refused")
    for rejected in result.rejected:
        err.print(f"refused: {rejected.reason}")
    if not result.added and not result.skipped:
        error("nothing enrolled; --force accepts faces the quality gate refuses")
        raise typer.Exit(EXIT_ERROR)


@cluster_app.command("merge")
@reports_errors
def merge(
    target: int = typer.Argument(..., help="Cluster that keeps the faces."),
    source: int = typer.Argument(..., help="Cluster whose faces move into TARGET; it is then removed."),
    db: Optional[str] = GalleryOption,
) -> None:
    """Merge cluster SOURCE into TARGET (two groups of one person)."""
    with Collection.saved(db) as collection:
        merged = collection.merge(target, source)
    out.print(f"cluster {source} merged into {target}: {merged.size} faces")


@cluster_app.command("split")
@reports_errors
def split(
    cluster: int = typer.Argument(..., help="Cluster holding the face."),
    face: int = typer.Argument(..., help="Face id (shown in the contact sheet and `cluster list --json`)."),
    db: Optional[str] = GalleryOption,
) -> None:
    """Move a face that does not belong out of its cluster, into a new cluster of its own."""
    with Collection.saved(db) as collection:
        new = collection.split(cluster, face)
    out.print(f"face {face} moved from cluster {cluster} to new cluster {new.id}")
