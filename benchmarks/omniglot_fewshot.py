"""Omniglot 20-way 1-shot on Lake et al.'s 20 official runs, for each loss, trained from scratch on CPU.

    python benchmarks/omniglot_fewshot.py [--losses triplet contrastive siamese arcface]
        [--minutes 8] [--threads 1] [--out out/omniglot]

Trains ``small-cnn`` (4 × conv-64, 28×28 grayscale, each class also turned by 90°/180°/270° as new
classes) on ``images_background_small1`` + ``small2`` (292 characters, 20% of them held out for
validation and the final check) for at most ``--minutes`` per loss (an equal budget: the machine
is shared), keeps the best validation epoch, exports it to ONNX and scores the ONNX file on
``all_runs_20way_oneshot`` as Lake et al. do (each test image takes the class of its nearest
training image; mean accuracy over 400 trials). The untrained network is scored the same way.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from faceshot.embed.onnx_model import OnnxModelEmbedder
from faceshot.evaluate.fewshot import read_omniglot_runs, score_omniglot_runs
from faceshot.train import TrainConfig, export_model, load_folders, train
from faceshot.train.backbones import create_backbone

ROOT = Path(__file__).resolve().parents[1]
OMNIGLOT = ROOT.parent / "shared" / "datasets" / "omniglot"


def lake(path: Path, runs: list) -> float:
    embedder = OnnxModelEmbedder(path, threads=1)
    return score_omniglot_runs(runs, embedder.embed_files).accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--omniglot", type=Path, default=OMNIGLOT)
    parser.add_argument("--losses", nargs="+", default=["triplet", "contrastive", "siamese", "arcface"])
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "omniglot")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    runs = read_omniglot_runs(args.omniglot / "all_runs_20way_oneshot")
    began = time.perf_counter()
    data = load_folders([args.omniglot / "images_background_small1", args.omniglot / "images_background_small2"])
    print(f"{len(data.classes)} characters, {len(data.labels)} images loaded in {time.perf_counter() - began:.0f} s")

    untrained = export_model(create_backbone("small-cnn"), args.out / "untrained.onnx")
    rows = [("none (untrained network)", "", "", "", f"{lake(untrained, runs):.1%}", "")]
    for loss in args.losses:
        config = TrainConfig(loss=loss, epochs=args.epochs, ways=20, shots=1, rotations=True,
                             time_limit=args.minutes * 60, threads=args.threads)
        began = time.perf_counter()
        result = train(data, config)
        seconds = time.perf_counter() - began
        path = export_model(result.model, args.out / f"{loss}.onnx", name=f"omniglot-{loss}", properties=result.summary())
        official = lake(path, runs)
        print(f"{loss}: {result.summary()} official {official:.1%}", flush=True)
        rows.append((loss, f"{len(result.history)} (best {result.best_epoch})",
                     f"{result.baseline.accuracy:.1%} → {result.trained.accuracy:.1%} ± {result.trained.ci95:.1%}",
                     result.stopped, f"{official:.1%}", f"{seconds / 60:.1f} min"))
    print("| loss | epochs of 100 batches | held-out 20-way 1-shot (untrained → trained) | stopped by | official 20 runs (400 trials) | wall time |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
