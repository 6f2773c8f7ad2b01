"""``faceshot train``: learn or adapt an embedder on labelled folders, and install it only if it helps."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from faceshot.cli.app import EXIT_NO, DetectorOption, JsonOption, app, err, error, out, progress_bar, reports_errors
from faceshot.errors import ConfigError



@app.command("train")
@reports_errors
def train_command(
    folders: list[Path] = typer.Argument(..., help="Labelled folders: one sub-folder per person or character, at any depth."),
    model_out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the trained model here (.onnx), if it beats the baseline."),
    loss: Optional[str] = typer.Option(None, "--loss", help="prototypical (Snell et al.), triplet (FaceNet, mined online), contrastive, siamese (sigmoid head, BCE), arcface. Default: chosen from the data."),
    mining: str = typer.Option("semihard", "--mining", help="Triplets to learn from: semihard (FaceNet), batch-hard, all."),
    backbone: str = typer.Option("small-cnn", "--backbone", help="small-cnn: learn from pixels (handwriting, symbols). koch: Koch et al.'s Siamese network. face-adapter: adapt the face embedder to your people."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="At most this many epochs (of --steps batches); the cosine schedule falls over them. Default: 80 with the cosine schedule from pixels (small-cnn, koch), else no limit but time and patience."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Batches per epoch, between two validations (default 100)."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Training time: no epoch is begun that would end after it (default 26)."),
    patience: Optional[int] = typer.Option(None, "--patience", min=0, help="Stop after this many epochs without a better validation figure (default 20)."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="Learning rate: cosine (falls from 1e-3 to 0 over --epochs, or over --minutes if that ends first) or plateau (halved after 3 epochs without a better validation figure). Default: cosine."),
    ways: Optional[int] = typer.Option(None, "--ways", help="Classes per validation episode (N-way). Default: as many as the held-out classes allow, up to 20."),
    shots: Optional[int] = typer.Option(None, "--shots", min=1, help="Examples per class in validation episodes (K-shot); the prototypical loss's support too (default 1)."),
    size: Optional[int] = typer.Option(None, "--size", help="small-cnn: images are resized to SIZE×SIZE pixels. Default: from the images."),
    channels: Optional[int] = typer.Option(None, "--channels", help="small-cnn: 1 (grayscale) or 3 (colour). Default: from the images."),
    rotations: Optional[bool] = typer.Option(None, "--rotations/--no-rotations", help="small-cnn: add each class turned by 90°, 180°, 270° as new classes. Default: on for glyphs (grey, two-tone), off otherwise."),
    affine: Optional[bool] = typer.Option(None, "--affine/--no-affine", help="small-cnn: Koch et al.'s random rotation, shear, scale and shift of training images. Default: on with 50 images per class or fewer."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the batches and the initial weights: a run repeats."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Save the training state here after each epoch."),
    resume: bool = typer.Option(False, "--resume", help="Continue from --checkpoint if it exists."),
    force: bool = typer.Option(False, "--force", help="Write --out even if the trained model is worse than the baseline."),
    name: Optional[str] = typer.Option(None, "--name", help="The model's name (default: the file's stem)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (default: 1 when the load average already fills the cores, else every core)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="face-adapter: processes embedding the photos."),
    detector: Optional[str] = DetectorOption,
    as_json: bool = JsonOption,
) -> None:
    """Train on your labelled folders, then compare with the baseline on held-out classes.

    Whatever is not given is chosen from the data (image size and colours, classes, images per
    class) and printed first with the reason (faceshot.train.recipe). The baseline is the
    untrained network (face-adapter: the pretrained face embedder alone), measured on the same
    N-way K-shot episodes of classes never seen in training. --out is written only when the
    trained model is at least as good (exit code 1 otherwise), unless --force.
    """
    from faceshot.train._torch import require

    require()
    from faceshot.spec import resolve_spec
    from faceshot.train.export import export_model
    from faceshot.train.folders import find_classes
    from faceshot.train.recipe import choose, profile
    from faceshot.train.sources import load_folders
    from faceshot.train.trainer import SCHEDULES, train

    if model_out is not None and model_out.suffix.lower() != ".onnx":
        raise ConfigError(f"--out must end in .onnx: {model_out}")
    if schedule is not None and schedule not in SCHEDULES:  # before minutes of reading images
        raise ConfigError(f"unknown --schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")
    given = {"loss": loss, "epochs": epochs, "steps_per_epoch": steps, "patience": patience, "schedule": schedule, "ways": ways,
             "shots": shots, "size": size, "channels": channels, "rotations": rotations, "affine": affine,
             "time_limit": minutes * 60 if minutes is not None else None, "threads": threads, "mining": mining}
    with progress_bar() as bar:
        task = bar.add_task("reading images" if backbone != "face-adapter" else "embedding faces", total=None)
        detector = resolve_spec(detector).detector_text  # the flag, else $FACESHOT_DETECTOR, else the default detector
        recipe = choose(profile(find_classes(folders, min_images=2)), backbone=backbone, given=given,
                        load=os.getloadavg()[0], cores=os.cpu_count())
        config = replace(recipe.config, seed=seed)
        for line in recipe.lines():
            err.print(f"recipe: {line}")
        data = load_folders(folders, backbone=backbone, size=recipe.size, channels=recipe.channels, detector=detector,
                            workers=workers, progress=lambda done, total: bar.update(task, completed=done, total=total))
        options = ({"size": recipe.size, "channels": recipe.channels} if backbone != "face-adapter"
                   else {"dim_in": int(data.inputs.shape[1])})
        bar.update(task, description=f"training ({config.loss})", completed=0, total=None)
        result = train(data, config, backbone_options=options, checkpoint=checkpoint, resume=resume,
                       progress=lambda step, total, epoch: bar.update(task, completed=step, total=total))
    summary = result.summary()
    install = model_out is not None and (result.improved or force)
    if install:
        assert model_out is not None
        export_model(result.model, model_out, name=name, properties=summary)
    summary["written"] = str(model_out) if install else None
    if as_json:
        print(json.dumps(summary))
    else:
        b, t = result.baseline, result.trained
        base = "the pretrained embedder alone" if backbone == "face-adapter" else "the untrained network"
        out.print(f"{len(result.split.test)} held-out classes, {b.episodes} episodes of {b.ways}-way {b.shots}-shot:")
        out.print(f"  baseline ({base}): {b.accuracy:.2%} ± {b.ci95:.2%}")
        out.print(f"  trained ({config.loss}, best epoch {result.best_epoch} of {len(result.history)}, "
                  f"stopped by {result.stopped}, {result.seconds / 60:.1f} min): {t.accuracy:.2%} ± {t.ci95:.2%}")
        if install:
            out.print(f"wrote {model_out}: use it with --embedder {model_out}")
    if model_out is not None and not install:
        error(f"the trained model is worse than the baseline on held-out classes; {model_out} not written "
              "(--force writes it anyway)")
        raise typer.Exit(EXIT_NO)
