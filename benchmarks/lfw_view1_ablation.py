"""Where does LFW accuracy go? Face choice, mirror averaging and a CNN fallback, on LFW View 1.

    python benchmarks/lfw_view1_ablation.py [--lfw ../shared/datasets/lfw]

Embeds every DevTrain + DevTest image once (HOG detector; dlib's CNN detector where HOG finds
nothing), keeping each face's vector and its mirror image's, then scores the variants: the
threshold is chosen on DevTrain, accuracy reported on DevTest. Pairs whose image has no face
count as "different".
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from faceshot.detect import create_detector
from faceshot.choice import central
from faceshot.engine import Engine
from faceshot.evaluate.lfw import read_pairs
from faceshot.evaluate.metrics import accuracy, best_threshold

ROOT = Path(__file__).resolve().parents[1]
_engine: Engine | None = None


def _start() -> None:
    global _engine
    _engine = Engine(embedder="dlib-resnet-single")


def _embed(path: str) -> dict:
    assert _engine is not None
    image = _engine.load(path)
    faces, detector = _engine.detector.detect(image), "hog"
    if not faces:
        faces, detector = create_detector("cnn").detect(image), "cnn"
    if not faces:
        return {"detector": None}
    choices = {"largest": faces[0], "central": central(faces, image.shape)}
    chips = _engine.aligner.align(image, list(choices.values()))
    plain = _engine.embedder.embed(chips)
    mirrored = _engine.embedder.embed(np.ascontiguousarray(chips[:, :, ::-1]))
    return {"detector": detector} | {
        name: (plain[i], mirrored[i]) for i, name in enumerate(choices)
    }


def vector(entry: dict, choice: str, mirror: bool) -> np.ndarray | None:
    if entry["detector"] is None:
        return None
    plain, mirrored = entry[choice]
    if not mirror:
        return plain
    both = plain + mirrored
    return both / np.linalg.norm(both)


def scores(pairs, entries, choice: str, mirror: bool, cnn: bool) -> np.ndarray:
    out = []
    for pair in pairs:
        a, b = entries[str(pair.a)], entries[str(pair.b)]
        usable = all(e["detector"] == "hog" or (cnn and e["detector"] == "cnn") for e in (a, b))
        out.append(float(vector(a, choice, mirror) @ vector(b, choice, mirror)) if usable else -1.0)
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "datasets" / "lfw")
    args = parser.parse_args()
    started = time.perf_counter()
    train = read_pairs(args.lfw / "pairsDevTrain.txt", args.lfw / "images")
    test = read_pairs(args.lfw / "pairsDevTest.txt", args.lfw / "images")
    paths = sorted({str(p) for pair in train + test for p in (pair.a, pair.b)})
    with ProcessPoolExecutor(os.cpu_count(), initializer=_start) as pool:
        entries = dict(zip(paths, pool.map(_embed, paths, chunksize=8)))
    fallback = sum(e["detector"] == "cnn" for e in entries.values())
    print(f"{len(paths)} images embedded in {time.perf_counter() - started:.0f} s; "
          f"HOG found no face in {fallback + sum(e['detector'] is None for e in entries.values())}, "
          f"CNN found one in {fallback} of those")
    y_train = np.array([p.same for p in train])
    y_test = np.array([p.same for p in test])
    print("| face used | mirror average | CNN fallback | threshold | DevTrain acc. | DevTest acc. |")
    print("|---|---|---|---|---|---|")
    for cnn in (False, True):
        for choice in ("largest", "central"):
            for mirror in (False, True):
                s_train = scores(train, entries, choice, mirror, cnn)
                s_test = scores(test, entries, choice, mirror, cnn)
                usable = s_train > -1.0
                threshold = best_threshold(s_train[usable], y_train[usable])
                print(f"| {choice} | {'yes' if mirror else 'no'} | {'yes' if cnn else 'no'} | {threshold:.4f} | "
                      f"{accuracy(s_train, y_train, threshold):.2%} | {accuracy(s_test, y_test, threshold):.2%} |")


if __name__ == "__main__":
    main()
