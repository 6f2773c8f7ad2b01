"""``faceshot eval …``: measure faceshot on labelled data with the standard protocols."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from faceshot.cli.app import (
    DetectorOption,
    EmbedderOption,
    JsonOption,
    MaxPixelsOption,
    app,
    err,
    out,
    progress_bar,
    reports_errors,
)
from faceshot.errors import ConfigError
from faceshot.gallery.location import parse_location
from faceshot.evaluate.lfw import read_pairs
from faceshot.evaluate.open_set import evaluate_open_set
from faceshot.evaluate.pairs import PEERS, score_pairs
from faceshot.evaluate.verification import VerificationReport, kfold, roc
from faceshot.spec import open_engine, resolve_spec

eval_app = typer.Typer(help="Measure accuracy on your own labelled photos (LFW protocol, open-set identification, few-shot).",
                       no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("verify")
@reports_errors
def eval_verify(
    pairs_file: Path = typer.Option(..., "--pairs", help="A pairs file in LFW's format (pairs.txt: folds × same + different)."),
    root: Path = typer.Option(..., "--root", help="Folder of images: ROOT/name/name_0001.jpg."),
    compare: list[str] = typer.Option([], "--compare", help="Also evaluate a peer library on the same pairs: face_recognition."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    multiple: str = typer.Option("central", "--multiple", help="Face used when an image has several: central, largest."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes to use (default: one per core)."),
    embedder: Optional[str] = EmbedderOption,
    detector: Optional[str] = DetectorOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    as_json: bool = JsonOption,
) -> None:
    """The LFW protocol: threshold chosen on 9 folds, accuracy on the 10th; mean ± std, ROC AUC, EER, TAR@FAR."""
    spec = resolve_spec(detector, embedder, max_pixels)
    unknown = sorted(set(compare) - set(PEERS))
    if unknown:
        raise ConfigError(f"unknown peer {', '.join(unknown)}; choose one of: {', '.join(PEERS)}")
    pairs = read_pairs(pairs_file, root)
    runs = []
    with progress_bar() as bar:
        systems = [("faceshot", None)] + [(peer, PEERS[peer]) for peer in compare]
        for name, peer in systems:
            task = bar.add_task(f"embedding ({name})", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            if peer is None:
                scored = score_pairs(pairs, engine=spec, multiple=multiple,  # type: ignore[arg-type]
                                     workers=workers, progress=advance)
            else:
                scored = peer(pairs, workers=workers, progress=advance)
            result = VerificationReport(
                folds=kfold(scored.scores, scored.same, scored.folds),
                roc=roc(scored.scores, scored.same),
                pairs=len(pairs),
                unscored_pairs=scored.unscored,
                settings={"system": scored.name, "images_without_face": len(scored.no_face)},
            )
            runs.append((scored, result))
    if report is not None:
        from faceshot.evaluate.report import verification_report

        settings = {"pairs file": str(pairs_file), "root": str(root), "detector": spec.detector_text, "embedder": spec.embedder_text,
                    "face choice": multiple,
                    "policy for images without a face": "their pairs count as rejected (different)"}
        verification_report(report, pairs, runs, title=f"faceshot eval verify: {pairs_file.name}", settings=settings)
        err.print(f"report written to {report}")
    if as_json:
        print(json.dumps({scored.name: result.to_dict() for scored, result in runs}))
        return
    table = Table(
        title=f"{pairs_file.name}: {len(pairs)} pairs, {len(set(p.fold for p in pairs))} folds",
        caption="no face: pairs with an image where no face was found (counted as rejected) / such images",
    )
    for column in ("system", "accuracy", "AUC", "EER", "TAR@1e-2", "TAR@1e-3", "no face"):
        table.add_column(column)
    for scored, result in runs:
        table.add_row(
            scored.name,
            f"{result.accuracy_mean:.2%} ± {result.accuracy_std:.2%}",
            f"{result.roc.auc:.4f}",
            f"{result.roc.eer:.2%}",
            f"{result.roc.tar_at(1e-2):.2%}",
            f"{result.roc.tar_at(1e-3):.2%}",
            f"{result.unscored_pairs} / {len(scored.no_face)}",
        )
    out.print(table)


@eval_app.command("identify")
@reports_errors
def eval_identify(
    folder: Path = typer.Argument(..., help="ROOT/person/photo.jpg: one sub-folder per person."),
    enroll: int = typer.Option(1, "--enroll", help="Photos enrolled per known person (1 = one-shot)."),
    unknown_fraction: float = typer.Option(0.3, "--unknown-fraction", help="Share of people held out as strangers."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random split."),
    baseline: str = typer.Option("", "--baseline", help="'classifier': also train logistic regression on the enrolled faces."),
    multiple: str = typer.Option("largest", "--multiple", help="Face used when a photo has several: largest, central."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a self-contained HTML report (DET curve) here."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes to use (default: one per core)."),
    detector: Optional[str] = DetectorOption,
    embedder: Optional[str] = EmbedderOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    as_json: bool = JsonOption,
) -> None:
    """One-shot (or few-shot) open-set identification: rank-1/5, FNIR at FPIR 1e-1, 1e-2, 1e-3."""
    spec = resolve_spec(detector, embedder, max_pixels)
    if baseline not in ("", "classifier"):
        raise ConfigError(f"unknown baseline {baseline!r}; choose: classifier")
    with progress_bar() as bar:
        task = bar.add_task("embedding", total=None)
        run = evaluate_open_set(
            folder, enroll=enroll, unknown_fraction=unknown_fraction, seed=seed, baseline=baseline == "classifier",
            engine=spec, multiple=multiple, workers=workers,  # type: ignore[arg-type]
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if report is not None:
        from faceshot.evaluate.report import identification_report

        identification_report(report, run, title=f"faceshot eval identify: {folder.name}, {enroll} photo(s) enrolled")
        err.print(f"report written to {report}")
    if as_json:
        print(json.dumps(run.to_dict()))
        return
    table = Table(
        title=f"{folder}: {run.people_enrolled} people enrolled ({enroll} photo(s) each), {run.strangers} strangers",
        caption=f"images where no face was found: {run.images_without_face} (probes: counted as naming nobody)",
    )
    for column in ("method", "mated", "non-mated", "rank-1", "rank-5", "FNIR@FPIR=0.1", "FNIR@FPIR=0.01", "FNIR@FPIR=0.001"):
        table.add_column(column)
    for name, result in run.results.items():
        figures = result.summary()
        table.add_row(
            name, str(figures["mated_probes"]), str(figures["nonmated_probes"]),
            f"{figures['rank1']:.2%}", f"{figures['rank5']:.2%}",
            *(_rate(figures[f"fnir_at_fpir_{fpir:g}"]) for fpir in (1e-1, 1e-2, 1e-3)),
        )
    out.print(table)


@eval_app.command("fewshot")
@reports_errors
def eval_fewshot(
    folder: Path = typer.Argument(..., help="ROOT/class/image (any depth), or Omniglot's runs (runNN/class_labels.txt)."),
    model: Optional[str] = typer.Option(
        None, "--model", "--embedder",
        help="A model file from `faceshot train` (.onnx) or an embedder name. Default: $FACESHOT_EMBEDDER, else dlib-resnet-onnx.",
    ),
    ways: int = typer.Option(5, "--ways", help="Classes per episode (N-way)."),
    shots: int = typer.Option(1, "--shots", help="Labelled examples per class (K-shot)."),
    episodes: int = typer.Option(600, "--episodes", help="Episodes to average."),
    queries: int = typer.Option(5, "--queries", help="Query images per class and episode."),
    seed: int = typer.Option(0, "--seed", help="Seed of the episodes."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes embedding face photos (default: one per core)."),
    detector: Optional[str] = DetectorOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    as_json: bool = JsonOption,
) -> None:
    """N-way K-shot accuracy: each query takes the class of the nearest mean of K examples (cosine).

    On Lake et al.'s Omniglot runs the runs themselves are the episodes (20-way 1-shot, 400 trials).
    """
    from faceshot.evaluate.fewshot import evaluate_folder

    spec = resolve_spec(detector, model, max_pixels)
    model = spec.embedder_text
    with progress_bar() as bar:
        task = bar.add_task("embedding", total=None)
        result = evaluate_folder(folder, model, ways=ways, shots=shots, count=episodes, queries=queries, seed=seed,
                                 detector=spec.detector_text, max_pixels=spec.max_pixels, workers=workers,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        print(json.dumps(result.to_dict() | {"model": model}))
        return
    out.print(f"{result.ways}-way {result.shots}-shot: accuracy {result.accuracy:.2%} ± {result.ci95:.2%} "
              f"(95% interval; {result.episodes} episodes, {result.queries} queries)")


def _rate(value: float | None) -> str:
    return "n/a (too few strangers)" if value is None else f"{value:.2%}"


@app.command()
@reports_errors
def calibrate(
    folder: Path = typer.Argument(..., help="Your labelled photos: ROOT/person/photo.jpg."),
    far: float = typer.Option(..., "--far", help="The false-accept rate to reach, e.g. 0.001."),
    db: Optional[str] = typer.Option(None, "--db", help="Save the FAR table in this gallery (a file or a URL): identify's thresholds and verify --db use it."),
    out_file: Optional[Path] = typer.Option(
        None, "--out", help="Write the FAR table to this JSON file (a model card's \"calibration\", see faceshot.embed.card)."
    ),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes to use (default: one per core)."),
    detector: Optional[str] = DetectorOption,
    embedder: Optional[str] = EmbedderOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    as_json: bool = JsonOption,
) -> None:
    """The threshold that gives false-accept rate FAR on your own photos, with a confidence interval.

    With --db, the whole FAR table measured there is saved in the gallery (embedded with its
    embedder): verify --db then defaults to this threshold, and identify's FPIR thresholds use the
    table instead of the embedder's bundled one.
    """
    from faceshot.evaluate.calibrate import calibrate as measure
    from faceshot.gallery import Gallery

    with progress_bar() as bar:
        task = bar.add_task("embedding", total=None)
        # With --db, the gallery's own engine (its vector space) is the one measured; a new
        # gallery is only made once the measurement succeeded.
        engine = open_engine(db, detector=detector, embedder=embedder, max_pixels=max_pixels)
        result = measure(folder, far, engine=engine, workers=workers,
                         progress=lambda done, total: bar.update(task, completed=done, total=total))
    if db is not None:
        with Gallery(db, engine=engine) as gallery:
            gallery.calibration = result.to_calibration(str(folder))
    if out_file is not None:
        from faceshot.onnx_graphs import write_atomically

        write_atomically(out_file, (json.dumps(result.to_calibration(folder.name).to_dict(), indent=1) + "\n").encode())
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    low, high = result.far_interval
    out.print(
        f"threshold {result.threshold:.4f}: false-accept rate {result.far:.2g} "
        f"(95% interval {low:.2g}–{high:.2g}, {result.impostor_pairs:,} impostor pairs), "
        f"false-reject rate {result.frr:.2%} ({result.genuine_pairs:,} genuine pairs); "
        f"{result.people} people, {result.images_without_face} images without a face"
    )
    if db is not None:
        out.print(f"saved in {parse_location(db)}: verify --db uses this threshold, identify this FAR table from now on")
    if out_file is not None:
        out.print(f"FAR table written to {out_file}")
