"""Face adapter: the pretrained embedder alone vs an adapter trained on other people, on held-out people.

    python benchmarks/face_adapter.py [--vectors .cache/lfw_embeddings.npz] [--threads 1]

Uses faceshot's dlib vectors of every LFW image (``.cache/lfw_embeddings.npz``: the chip's and its
mirror image's descriptors; faceshot's vector is their normalised sum), so LFW is not embedded
again. People with at least two photos where a face was found are split by identity (seed 0):
20% held out, half for validation (early stopping), half for the test on which the baseline
(dlib alone) and the adapted vectors are compared, 100-way, 20-way and 5-way 1-shot, 600 episodes each.
Two training sets: every remaining person (the domain-adaptation case), and 20 people with
4-5 photos each (the case where a fine-tuned head scored 0% once deployed).

Then the same within another domain, AT&T (40 people, studio, grayscale) and Yale A (15 people,
harsh lighting): each set's photos are embedded once (HOG, largest face; cached in ``.cache/``),
its people split by identity (seed 0) into training, validation and test, and dlib alone is
compared with an adapter trained on that set's training people, 5-way 1-shot on its test people.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from faceshot.bulk import one_vector_per_file
from faceshot.embed import normalize
from faceshot.train.folders import find_classes
from faceshot.evaluate.fewshot import episodes, evaluate_episodes
from faceshot.train import TrainConfig, train
from faceshot.train.folders import IdentitySplit, split_identities
from faceshot.train.trainer import TrainingData, embed_inputs

ROOT = Path(__file__).resolve().parents[1]


def lfw_vectors(path: Path) -> TrainingData:
    saved = np.load(path)
    found = saved["faces"] > 0
    vectors = normalize(normalize(saved["raw"]) + normalize(saved["mirror"]))[found]
    people = np.array([p.split("/")[0] for p in saved["paths"]])[found]
    names, labels = np.unique(people, return_inverse=True)
    counts = np.bincount(labels)
    keep = counts[labels] >= 2
    names, labels = np.unique(people[keep], return_inverse=True)
    return TrainingData(vectors[keep], labels.astype(np.int64), tuple(names))


def folder_vectors(root: Path, cache: Path) -> TrainingData:
    """Every photo's faceshot vector (photos without a face left out), embedded once and cached."""
    images = find_classes([root], min_images=2)
    if cache.is_file():
        saved = np.load(cache)
        vectors = dict(zip(saved["paths"].tolist(), saved["vectors"]))
    else:
        vectors = one_vector_per_file(images.paths, workers=1)
        np.savez(cache, paths=np.array(list(vectors)), vectors=np.array(list(vectors.values())))
    keep = [i for i, p in enumerate(images.paths) if str(p) in vectors]
    return TrainingData(np.stack([vectors[str(images.paths[i])] for i in keep]), images.labels[keep], images.classes)


def within(name: str, data: TrainingData, loss: str, threads: int) -> None:
    split = split_identities(len(data.classes), holdout=0.5, minimum=5, seed=0)
    config = TrainConfig(loss=loss, backbone="face-adapter", ways=5, shots=1, episodes=600, epochs=30,
                         steps_per_epoch=50, patience=5, threads=threads, classes_per_batch=8, per_class=4)
    began = time.perf_counter()
    result = train(data, config, split=split, backbone_options={"dim_in": 128})
    b, t = result.baseline, result.trained
    print(f"| {name}: {len(split.train)} people ({int(np.isin(data.labels, split.train).sum())} photos) | "
          f"{len(split.test)} people ({int(np.isin(data.labels, split.test).sum())} photos) | "
          f"{len(result.history)} ({result.best_epoch}) | {b.accuracy:.2%} ± {b.ci95:.2%} | {t.accuracy:.2%} ± {t.ci95:.2%} | "
          f"{'yes' if result.improved else 'no (refused)'} | {time.perf_counter() - began:.0f} s |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=Path, default=ROOT / ".cache" / "lfw_embeddings.npz")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--loss", default="triplet")
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = lfw_vectors(args.vectors)
    counts = np.bincount(data.labels)
    print(f"LFW: {len(data.classes)} people with ≥ 2 photos with a face, {len(data.labels)} photos")
    full = split_identities(len(data.classes), holdout=0.2, minimum=20, seed=0)
    rng = np.random.default_rng(0)
    few_people = [c for c in full.train if 4 <= counts[c] <= 5]
    few = IdentitySplit(tuple(sorted(rng.choice(few_people, 20, replace=False).tolist())), full.validation, full.test)
    test_at = np.flatnonzero(np.isin(data.labels, full.test))
    print("| training people | photos | loss | epochs (best) | ways | dlib alone | adapted | installed by the guard? | wall time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, split in (("all others", full), ("20 people, 4-5 photos each", few)):
        config = TrainConfig(loss=args.loss, backbone="face-adapter", ways=20, shots=1, episodes=600, epochs=30,
                             steps_per_epoch=100, patience=5, threads=args.threads, classes_per_batch=32, per_class=4)
        began = time.perf_counter()
        result = train(data, config, split=split, backbone_options={"dim_in": 128})
        seconds = time.perf_counter() - began
        photos = int(np.isin(data.labels, split.train).sum())
        adapted = embed_inputs(result.model, data.inputs[test_at])
        baseline = data.inputs[test_at]
        for ways in (100, 20, 5):
            drawn = episodes(data.labels[test_at], ways=ways, shots=1, count=600, seed=1)
            before = evaluate_episodes(baseline, drawn, ways=ways, shots=1)
            after = evaluate_episodes(adapted, drawn, ways=ways, shots=1)
            print(f"| {label} ({len(split.train)}) | {photos} | {args.loss} | {len(result.history)} ({result.best_epoch}) | "
                  f"{ways}-way 1-shot | {before.accuracy:.2%} ± {before.ci95:.2%} | {after.accuracy:.2%} ± {after.ci95:.2%} | "
                  f"{'yes' if after.accuracy >= before.accuracy else 'no (refused)'} | {seconds:.0f} s |", flush=True)

    print()
    print("| trained on | tested on (other people) | epochs (best) | dlib alone, 5-way 1-shot | adapted | installed by the guard? | wall time |")
    print("|---|---|---|---|---|---|---|")
    for name in ("att_faces", "yale_faces"):
        began = time.perf_counter()
        data = folder_vectors(args.datasets / name, ROOT / ".cache" / f"{name}_vectors.npz")
        logging.warning("%s: %d photos with a face (%.0f s)", name, len(data.labels), time.perf_counter() - began)
        within(name, data, args.loss, args.threads)


if __name__ == "__main__":
    main()

