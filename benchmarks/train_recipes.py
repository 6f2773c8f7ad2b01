"""``faceshot train``'s recipes on Omniglot, per loss, on Lake's official runs and on held-out characters.

    python benchmarks/train_recipes.py --rows default triplet contrastive siamese arcface koch \\
        [--cpu-minutes 4 | --minutes 6] [--seeds 0 1 2] [--threads N] [--out out/recipes]
    python benchmarks/train_recipes.py --faces [--cpu-minutes 4]    # AT&T and Yale from scratch vs dlib
    python benchmarks/train_recipes.py --score m.onnx [--seeds S]  # a row's figures for a model of faceshot train --seed S

Each row trains on ``images_background_small1`` + ``small2`` (292 characters) with the recipe
:mod:`faceshot.train.recipe` chooses from the data, changed only where the row says:

- ``default``: the recipe as chosen (prototypical loss, rotations, Koch's distortions, 32 classes ×
  (1 support + 3 queries) per batch: as many images per batch as the other losses' 32 × 4);
- ``triplet``, ``contrastive``, ``siamese``, ``arcface``: that loss (P×K = 32 × 4 batches), the rest as chosen;
- ``koch``: Koch et al.'s network (kernels and input scaled to 56 px) with the siamese head and
  Koch's distortions, P×K = 32 × 4, rotations as chosen.

An equal budget per row: ``--cpu-minutes`` of this process's CPU time (with one thread, what a
quiet core gives in as many minutes; the figures then do not depend on what else the machine runs),
or ``--minutes`` of wall time (the recipe's own default is 26 wall minutes); the default row's 80
epochs of cosine schedule end it first if it gets through them. The kept
model is exported to ONNX and scored from the file: Lake's 20 official 20-way 1-shot runs (400
trials), and 5-way 1-shot on the same runs (every run's 20 test images against 5 of its classes:
all 15,504 subsets would be slow, so 50 seeded subsets per run). The test characters (29, never
trained on nor used to choose the epoch) give 5-way and 20-way, 1-shot and 5-shot, 600 episodes
each. Wall and CPU time (user + system of this process, all threads) are per row.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceshot.embed.onnx_model import OnnxModelEmbedder
from faceshot.evaluate.fewshot import episodes, evaluate_episodes, read_omniglot_runs, score_omniglot_runs
from faceshot.train import export_model, load_folders, train
from faceshot.train.folders import find_classes, split_identities
from faceshot.train.recipe import choose, profile
from faceshot.train.trainer import TrainingData, embed_inputs

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def five_way_official(runs: list, embedder: OnnxModelEmbedder, subsets: int = 50) -> float:
    """5-way 1-shot on the official runs: each test image of 5 chosen classes against those 5 training images."""
    rng = np.random.default_rng(0)
    right = total = 0
    for run in runs:
        vectors = embedder.embed_files([*run.training, *run.test])
        training, test = vectors[: len(run.training)], vectors[len(run.training):]
        for _ in range(subsets):
            ways = rng.choice(len(run.training), 5, replace=False)
            queries = np.flatnonzero(np.isin(run.answers, ways))
            guesses = ways[np.argmax(test[queries] @ training[ways].T, axis=1)]
            right += int((guesses == run.answers[queries]).sum())
            total += len(queries)
    return right / total


def budget(args: argparse.Namespace) -> dict:
    """The TrainConfig fields of the equal budget: CPU seconds when asked, wall seconds otherwise."""
    if args.cpu_minutes:
        return {"cpu_limit": args.cpu_minutes * 60, "time_limit": 1e9}
    return {"time_limit": args.minutes * 60}


def row_recipe(name: str, data_profile, limits: dict, seed: int):
    given: dict = dict(limits)
    backbone = "small-cnn"
    if name in ("triplet", "contrastive", "siamese", "arcface"):
        given.update(loss=name, classes_per_batch=32, per_class=4, steps_per_epoch=100)
    elif name == "koch":
        backbone = "koch"
        given.update(loss="siamese", classes_per_batch=32, per_class=4, steps_per_epoch=100, size=56)
    elif name != "default":
        raise SystemExit(f"unknown row {name!r}")
    recipe = choose(data_profile, backbone=backbone, given=given)
    return recipe, replace(recipe.config, seed=seed, backbone=backbone)


def held_out(model, data: TrainingData, test: tuple[int, ...]) -> dict[str, str]:
    at = np.flatnonzero(np.isin(data.labels, test))
    vectors = embed_inputs(model, data.inputs[at])
    cells = {}
    for ways in (5, 20):
        for shots in (1, 5):
            drawn = episodes(data.labels[at], ways=ways, shots=shots, count=600, seed=1)
            result = evaluate_episodes(vectors, drawn, ways=ways, shots=shots)
            cells[f"{ways}w{shots}s"] = f"{result.accuracy:.1%}"
    return cells


def omniglot(args: argparse.Namespace) -> None:
    roots = [args.omniglot / "images_background_small1", args.omniglot / "images_background_small2"]
    runs = read_omniglot_runs(args.omniglot / "all_runs_20way_oneshot")
    data_profile = profile(find_classes(roots, min_images=2))
    loaded: dict[int, TrainingData] = {}
    header = ("| row | seed | stopped by (epochs, best) | official 20-way 1-shot | official 5-way 1-shot | "
              "held-out 5-way 1-shot | 5-way 5-shot | 20-way 1-shot | 20-way 5-shot | wall | CPU |")
    lines = [header, "|" + "---|" * 11]
    for name in args.rows:
        for seed in args.seeds:
            recipe, config = row_recipe(name, data_profile, budget(args), seed)
            if args.threads:
                config = replace(config, threads=args.threads)
            if recipe.size not in loaded:
                loaded[recipe.size] = load_folders(roots, size=recipe.size, channels=recipe.channels)
            data = loaded[recipe.size]
            wall, cpu = time.perf_counter(), cpu_seconds()
            result = train(data, config, backbone_options={"size": recipe.size, "channels": recipe.channels})
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            path = export_model(result.model, args.out / f"{name}-{seed}.onnx", properties=result.summary())
            embedder = OnnxModelEmbedder(path, threads=1)
            official = score_omniglot_runs(runs, embedder.embed_files).accuracy
            cells = held_out(result.model, data, result.split.test)
            line = (f"| {name} ({config.loss}, {config.backbone}) | {seed} | {result.stopped} ({len(result.history)}, "
                    f"{result.best_epoch}) | **{official:.1%}** | {five_way_official(runs, embedder):.1%} | {cells['5w1s']} | "
                    f"{cells['5w5s']} | {cells['20w1s']} | {cells['20w5s']} | {wall / 60:.1f} min | {cpu / 60:.1f} min |")
            print(line, flush=True)
            lines.append(line)
    print("\n".join(lines))


def score(args: argparse.Namespace) -> None:
    """The figures of one row for a model already trained by ``faceshot train --seed S`` (``--seeds S``: its split)."""
    roots = [args.omniglot / "images_background_small1", args.omniglot / "images_background_small2"]
    runs = read_omniglot_runs(args.omniglot / "all_runs_20way_oneshot")
    embedder = OnnxModelEmbedder(args.score, threads=1)
    official, five = score_omniglot_runs(runs, embedder.embed_files).accuracy, five_way_official(runs, embedder)
    images = find_classes(roots, min_images=2)
    recipe = choose(profile(images))
    split = split_identities(len(images.classes), holdout=recipe.config.holdout, minimum=recipe.config.ways, seed=args.seeds[0])
    at = np.flatnonzero(np.isin(images.labels, split.test))
    vectors = embedder.embed_files([images.paths[i] for i in at])
    cells = []
    for ways in (5, 20):
        for shots in (1, 5):
            drawn = episodes(images.labels[at], ways=ways, shots=shots, count=600, seed=1)
            cells.append(f"{evaluate_episodes(vectors, drawn, ways=ways, shots=shots).accuracy:.1%}")
    print(f"| {args.score.name} | **{official:.1%}** | {five:.1%} | " + " | ".join(cells) + " |")


def faces(args: argparse.Namespace) -> None:
    """From scratch on each face set vs dlib's pretrained embedder, on the same test people's episodes."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from face_adapter import folder_vectors

    print("| set | recipe (from the data) | from scratch, 5-way 1-shot | dlib alone, same test people | wall | CPU |")
    print("|---|---|---|---|---|---|")
    for name in ("att_faces", "yale_faces"):
        root = args.datasets / name
        images = find_classes([root], min_images=2)
        recipe = choose(profile(images), given=budget(args))
        config = replace(recipe.config, episodes=600, **({"threads": args.threads} if args.threads else {}))
        data = load_folders([root], size=recipe.size, channels=recipe.channels)
        split = split_identities(len(data.classes), holdout=config.holdout, minimum=config.ways, seed=config.seed)
        wall, cpu = time.perf_counter(), cpu_seconds()
        result = train(data, config, split=split, backbone_options={"size": recipe.size, "channels": recipe.channels})
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        # dlib on the same test people, photos where a face was found (cached beside the adapter benchmark's).
        vectors = folder_vectors(root, ROOT / ".cache" / f"{name}_vectors.npz")
        at = np.flatnonzero(np.isin(vectors.labels, split.test))
        drawn = episodes(vectors.labels[at], ways=config.ways, shots=1, count=600, seed=config.seed + 1)
        dlib = evaluate_episodes(vectors.inputs[at], drawn, ways=config.ways, shots=1)
        t = result.trained
        print(f"| {name} ({len(data.classes)} people, {len(data.labels)} photos; {len(split.test)} test people) | "
              f"{config.loss}, {recipe.size} px, {'rotations' if config.rotations else 'no rotations'}, "
              f"{'affine' if config.affine else 'shifts'} | {t.accuracy:.1%} ± {t.ci95:.1%} ({t.ways}-way) | "
              f"{dlib.accuracy:.1%} ± {dlib.ci95:.1%} | {wall / 60:.1f} min | {cpu / 60:.1f} min |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--omniglot", type=Path, default=DATASETS / "omniglot")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--rows", nargs="+", default=["default", "triplet", "contrastive", "siamese", "arcface", "koch"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="wall minutes of training per row")
    parser.add_argument("--cpu-minutes", type=float, help="CPU minutes of training per row instead of wall minutes")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--faces", action="store_true", help="AT&T and Yale from scratch vs dlib instead")
    parser.add_argument("--score", type=Path, help="only score this model (from faceshot train) as a row's figures")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "recipes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    score(args) if args.score else faces(args) if args.faces else omniglot(args)


if __name__ == "__main__":
    main()
