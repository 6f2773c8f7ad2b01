"""Choose an embedder's default threshold on LFW View 1 and measure it; write its calibration file.

    python benchmarks/calibrate_lfw_view1.py [--embedder dlib-resnet-onnx] [--lfw ../shared/datasets/lfw] [--vectors FILE]

``--vectors``: take the vectors from ``calibrate_lfw_far.py``'s cache (``.cache/lfw_far_vectors.npz``,
every LFW image, the same faces and embedder) instead of embedding the View 1 images again; the cache
must have been written with the same detector and embedder.

- threshold: best accuracy on ``pairsDevTrain.txt`` (1,100 same + 1,100 different pairs); where
  several thresholds reach it, the highest (the fewest false accepts at that accuracy: with
  ``hog>cnn-onnx`` a lone spike at 0.9045 ties the plateau 0.9105–0.912, and the lowest of them
  would have doubled the false-accept rate, 0.8% → 2.4% on DevTest);
- FAR table: every different-identity pair among the DevTrain images (millions of impostor pairs),
  so that a target false-accept rate maps to a threshold;
- figures: accuracy, FAR and FRR at that threshold on ``pairsDevTest.txt`` (500 + 500 pairs).

The shipped FAR table is then replaced by ``calibrate_lfw_far.py``, which measures it on every
LFW image (~86 M impostor pairs instead of ~5.9 M); run it after this script.

With several faces in a photo the most central is used (LFW crops are centred on the labelled
person). Images in which no face is found are counted and printed; their pairs count as rejected
("different") on DevTest, and are left out of threshold selection on DevTrain.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from faceshot.bulk import one_vector_per_file
from faceshot.embed import create_embedder
from faceshot.spec import DEFAULT_DETECTOR
from faceshot.evaluate.lfw import read_pairs
from faceshot.evaluate.metrics import accuracy, best_threshold, error_rates, far_table

ROOT = Path(__file__).resolve().parents[1]


def embed_all(paths: list[Path], detector: str, embedder: str) -> dict[Path, np.ndarray]:
    # LFW photos are centred on the labelled person: with several faces, use the central one.
    found = one_vector_per_file(paths, detector=detector, embedder=embedder, multiple="central")
    return {Path(path): vector for path, vector in found.items()}


def cached_vectors(path: Path, lfw: Path, detector: str, embedder: str) -> dict[Path, np.ndarray]:
    """The vectors of ``calibrate_lfw_far.py``'s cache, keyed like :func:`embed_all`'s."""
    expected = json.dumps({"detector": detector, "embedder": embedder, "multiple": "central", "offsets": 1}, sort_keys=True)
    with np.load(path) as data:
        if str(data["pipeline"]) != expected:
            raise SystemExit(f"{path} was written by another pipeline: {data['pipeline']}")
        return {lfw / "images" / str(name): vector for name, vector in zip(data["paths"], data["vectors"])}


def highest_best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The highest threshold with the best accuracy on these pairs (midway between neighbouring scores)."""
    order = np.argsort(scores)
    s, y = scores[order], same[order].astype(bool)
    correct = np.concatenate([[0], np.cumsum(~y)]) + (y.sum() - np.concatenate([[0], np.cumsum(y)]))
    best = len(correct) - 1 - int(np.argmax(correct[::-1]))  # the last position of the maximum
    if best == 0:
        return float(s[0] - 1e-6)
    if best == len(s):
        return float(s[-1] + 1e-6)
    return float((s[best - 1] + s[best]) / 2)


def pair_scores(pairs, vectors) -> tuple[np.ndarray, np.ndarray, int]:
    scores, same, missing = [], [], 0
    for pair in pairs:
        if pair.a in vectors and pair.b in vectors:
            scores.append(float(vectors[pair.a] @ vectors[pair.b]))
        else:
            missing += 1
            scores.append(-1.0)  # cannot be verified: rejected
        same.append(pair.same)
    return np.array(scores), np.array(same), missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "datasets" / "lfw")
    parser.add_argument("--embedder", default="dlib-resnet-onnx")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help="detector text (default: faceshot's default)")
    parser.add_argument("--out", type=Path, default=None, help="calibration file to write")
    parser.add_argument("--vectors", type=Path, default=None, help="calibrate_lfw_far.py's vector cache to read instead of embedding")
    args = parser.parse_args()

    started = time.perf_counter()
    train = read_pairs(args.lfw / "pairsDevTrain.txt", args.lfw / "images")
    test = read_pairs(args.lfw / "pairsDevTest.txt", args.lfw / "images")
    paths = sorted({p for pair in train + test for p in (pair.a, pair.b)})
    if args.vectors:
        everything = cached_vectors(args.vectors, args.lfw, args.detector, args.embedder)
        vectors = {p: everything[p] for p in paths if p in everything}
    else:
        vectors = embed_all(paths, args.detector, args.embedder)
    no_face = [p for p in paths if p not in vectors]
    print(f"embedded {len(vectors)} of {len(paths)} images in {time.perf_counter() - started:.0f} s; "
          f"no face found in {len(no_face)}")
    for path in no_face:
        print(f"  no face: {path.relative_to(args.lfw)}")

    train_scores, train_same, train_missing = pair_scores(train, vectors)
    usable = train_scores > -1.0
    threshold = highest_best_threshold(train_scores[usable], train_same[usable])
    lowest = best_threshold(train_scores[usable], train_same[usable])
    if lowest < threshold:
        print(f"best DevTrain accuracy from threshold {lowest:.6f} (lowest) to {threshold:.6f} (highest, used)")

    train_images = sorted({p for pair in train for p in (pair.a, pair.b) if p in vectors})
    matrix = np.stack([vectors[p] for p in train_images])
    identity = np.array([p.parent.name for p in train_images])
    upper = np.triu_indices(len(train_images), k=1)
    impostor = (matrix @ matrix.T)[upper][identity[upper[0]] != identity[upper[1]]]
    table = far_table(impostor)

    test_scores, test_same, test_missing = pair_scores(test, vectors)
    far, frr = error_rates(test_scores, test_same, threshold)
    figures = {
        "devtrain_accuracy": round(accuracy(train_scores[usable], train_same[usable], threshold), 4),
        "devtrain_pairs_without_face": train_missing,
        "devtest_accuracy": round(accuracy(test_scores, test_same, threshold), 4),
        "devtest_far": round(far, 4),
        "devtest_frr": round(frr, 4),
        "devtest_pairs_without_face": test_missing,
        "impostor_pairs": int(len(impostor)),
        "far_at_threshold_on_impostor_set": round(float(np.mean(impostor >= threshold)), 5),
    }
    space = create_embedder(args.embedder).space  # dlib-resnet-onnx computes dlib-resnet's vectors
    calibration = {
        "embedder": space,
        "threshold": round(threshold, 6),
        "reference": (
            f"LFW View 1: threshold of best accuracy on pairsDevTrain.txt ({args.detector} detector, "
            f"{args.embedder}); "
            f"FAR table from {len(impostor):,} different-identity pairs among the DevTrain images; "
            "figures on pairsDevTest.txt"
        ),
        "figures": figures,
        "far_table": table,
    }
    out = args.out or ROOT / "faceshot" / "embed" / "calibration" / f"{space}.json"
    out.write_text(json.dumps(calibration, indent=1) + "\n")
    print(json.dumps({k: v for k, v in calibration.items() if k != "far_table"}, indent=1))
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
          f"in {time.perf_counter() - started:.0f} s; now run benchmarks/calibrate_lfw_far.py for the FAR table")


if __name__ == "__main__":
    main()
