"""Clustering LFW: which algorithm, at which threshold, groups an unlabeled collection best?

    python benchmarks/lfw_cluster.py [--lfw ../shared/datasets/lfw] [--json OUT]

**Test set** (the one the issue names): the 158 people with at least 10 LFW images (4,324 images)
plus 4,324 distractors, one image each of 4,324 other people: every person with a single LFW image
whose face is found (4,038 of 4,069), then the first image of two-image people, alphabetically,
until the count is reached. A distractor is right only when it is left alone (or in a cluster of
its own). Images where no face is found are left out, and counted.

**Choosing parameters without looking at the test set**: every algorithm's threshold (and density
parameter) is swept on a separate *development set*, the 743 people with 3 to 9 images (3,282
images) plus the *second* image of each of the 779 two-image people as distractors (no image is in
both sets). The setting with the best BCubed F on the development set is then run once on the test
set. The test-set sweep is printed too, marked as such, to show how much that choice left behind.
For reference, dlib's own example (``chinese_whispers_clustering`` on raw descriptors at Euclidean
distance 0.5) runs on the same faces; and the default algorithm is run as a saved collection grows:
the test set added in 1, 2, 4 and 16 random parts: each time, the unclustered faces join the
clusters already there and the rest are clustered among themselves
(:func:`faceshot.cluster.assign.grow`, what ``Collection.add`` does).

Scores: faceshot's default vectors (mirror-averaged dlib descriptors, unit length; cosine score),
read from ``.cache/lfw_embeddings.npz`` (written by ``benchmarks/lfw_open_set.py``); when that file
is absent, the images are embedded here (about 25 minutes on two cores). Faces: HOG detector, the
most central face of each image. Clusters smaller than ``--min-size`` (2) count as unclustered.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from faceshot.cluster.algorithms import create_clusterer, drop_small
from faceshot.cluster.assign import grow
from faceshot.cluster.metrics import score_clustering
from faceshot.embed import normalize

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "lfw_embeddings.npz"
THRESHOLDS = (0.912, 0.93, 0.935, 0.94, 0.945, 0.95, 0.955, 0.96, 0.97)
# HDBSCAN finds its own cut-offs (the threshold only trims faces that match no other member), and
# takes seconds a run: fewer points.
FLOORS = (0.85, 0.9, 0.93, 0.95)
# (algorithm, options, thresholds). DBSCAN with min_samples=2 is connected components exactly
# (every face with a neighbour is a core face), so it is not run twice.
SETTINGS: tuple[tuple[str, dict[str, Any], tuple[float, ...]], ...] = (
    ("chinese-whispers", {}, THRESHOLDS),
    ("components", {}, THRESHOLDS),
    ("dbscan", {"min_samples": 3}, THRESHOLDS),
    ("dbscan", {"min_samples": 5}, THRESHOLDS),
    ("hdbscan", {"min_cluster_size": 2}, FLOORS),
    ("hdbscan", {"min_cluster_size": 3}, FLOORS),
)


def load_vectors(lfw: Path) -> dict[str, np.ndarray]:
    """``{"Person/Person_0001.jpg": unit vector}`` for every LFW image whose face is found."""
    if CACHE.is_file():
        data = np.load(CACHE, allow_pickle=False)
        found = data["faces"] > 0
        vectors = normalize(data["raw"][found] + data["mirror"][found])
        return dict(zip(data["paths"][found].tolist(), vectors))
    from faceshot.bulk import one_vector_per_file

    print(f"{CACHE} is absent: embedding every LFW image (about 25 minutes on two cores)")
    images = lfw / "images"
    paths = sorted(str(p) for p in images.glob("*/*.jpg"))
    found = one_vector_per_file(paths, multiple="central")
    return {str(Path(path).relative_to(images)): vector for path, vector in found.items()}


def raw_descriptors() -> dict[str, np.ndarray] | None:
    """dlib's raw descriptors (one pass, not unit length), as dlib's own clustering example uses them."""
    if not CACHE.is_file():
        return None
    data = np.load(CACHE, allow_pickle=False)
    found = data["faces"] > 0
    return dict(zip(data["paths"][found].tolist(), data["raw"][found]))


def dlib_example(data: dict[str, Any], raw: dict[str, np.ndarray], min_size: int) -> dict[str, Any]:
    """dlib's face_clustering.py: chinese_whispers_clustering on raw descriptors at Euclidean distance 0.5."""
    import dlib

    descriptors = [dlib.vector(raw[path].astype(float).tolist()) for path in data["paths"]]
    start = time.perf_counter()
    labels = drop_small(np.asarray(dlib.chinese_whispers_clustering(descriptors, 0.5)), min_size)
    seconds = time.perf_counter() - start
    biggest = Counter(labels[labels >= 0].tolist()).most_common(1)
    return {"algorithm": "dlib example (raw, distance 0.5)", "options": {}, "threshold": float("nan"),
            "seconds": round(seconds, 2), "largest_cluster": biggest[0][1] if biggest else 0,
            **score_clustering(data["labels"], labels).to_dict()}


def incremental(data: dict[str, Any], algorithm: str, options: dict[str, Any], threshold: float,
                min_size: int, batches: int, seed: int = 0) -> dict[str, Any]:
    """The test set added in ``batches`` random parts, as ``Collection.add`` does on a saved collection."""
    order = np.random.default_rng(seed).permutation(len(data["paths"]))
    clusterer = create_clusterer(algorithm, **options)
    labels = np.zeros(0, np.int64)
    next_label = 0
    start = time.perf_counter()
    for part in np.array_split(order, batches):
        labels = np.concatenate([labels, np.full(len(part), -1, np.int64)])
        labels, groups = grow(data["vectors"][order[: len(labels)]], labels, clusterer, threshold, min_size)
        for group in groups:
            labels[group] = next_label
            next_label += 1
    seconds = time.perf_counter() - start
    truth = data["labels"][order]
    biggest = Counter(labels[labels >= 0].tolist()).most_common(1)
    return {"algorithm": f"{algorithm} in {batches} batches", "options": options, "threshold": threshold,
            "seconds": round(seconds, 2), "largest_cluster": biggest[0][1] if biggest else 0,
            **score_clustering(truth, labels).to_dict()}


def all_images(lfw: Path) -> dict[str, list[str]]:
    people: dict[str, list[str]] = {}
    for path in sorted((lfw / "images").glob("*/*.jpg")):
        people.setdefault(path.parent.name, []).append(f"{path.parent.name}/{path.name}")
    return people


def build_sets(people: dict[str, list[str]], vectors: dict[str, np.ndarray]) -> dict[str, Any]:
    """The test and development sets: (paths, labels) with faces found, and what was left out."""
    sizes = {name: len(files) for name, files in people.items()}
    big = [name for name in people if sizes[name] >= 10]
    test_images = sum(sizes[name] for name in big)
    singles = [people[name][0] for name in people if sizes[name] == 1 and people[name][0] in vectors]
    pairs_first = [people[name][0] for name in people if sizes[name] == 2 and people[name][0] in vectors]
    distractors = (singles + pairs_first)[:test_images]
    sets = {}
    for label, members, extra in (
        ("test", big, distractors),
        ("dev", [name for name in people if 3 <= sizes[name] <= 9],
         [people[name][1] for name in people if sizes[name] == 2 and people[name][1] in vectors]),
    ):
        paths = [path for name in members for path in people[name] if path in vectors]
        listed = sum(sizes[name] for name in members)
        paths += extra
        names = [path.split("/")[0] for path in paths]
        ids = {name: number for number, name in enumerate(dict.fromkeys(names))}
        sets[label] = {
            "paths": paths,
            "labels": np.array([ids[name] for name in names]),
            "vectors": np.stack([vectors[path] for path in paths]),
            "people": len(members),
            "images": listed,
            "faces": len(paths) - len(extra),
            "distractors": len(extra),
        }
    sets["singles_used"] = sum(1 for path in distractors if sizes[path.split("/")[0]] == 1)
    return sets


def run(data: dict[str, Any], algorithm: str, options: dict[str, Any], threshold: float, min_size: int) -> dict[str, Any]:
    clusterer = create_clusterer(algorithm, **options)
    start = time.perf_counter()
    labels = drop_small(clusterer.fit(data["vectors"], threshold, min_size), min_size)
    seconds = time.perf_counter() - start
    scores = score_clustering(data["labels"], labels).to_dict()
    biggest = Counter(labels[labels >= 0].tolist()).most_common(1)
    return {
        "algorithm": algorithm,
        "options": options,
        "threshold": threshold,
        "seconds": round(seconds, 2),
        "largest_cluster": biggest[0][1] if biggest else 0,
        **scores,
    }


def describe(result: dict[str, Any]) -> str:
    options = ",".join(f"{k}={v}" for k, v in result["options"].items())
    name = f"{result['algorithm']}{'(' + options + ')' if options else ''}"
    name = name if len(name) <= 34 else name[:33] + "…"
    return (
        f"{name:34s} t={result['threshold']:.3f}  pairwise P/R/F {result['pairwise_precision']:.3f}/"
        f"{result['pairwise_recall']:.3f}/{result['pairwise_f']:.3f}  BCubed P/R/F {result['bcubed_precision']:.3f}/"
        f"{result['bcubed_recall']:.3f}/{result['bcubed_f']:.3f}  clusters {result['clusters']:5d} "
        f"(largest {result['largest_cluster']:4d}) unclustered {result['unclustered']:5d}  {result['seconds']:6.2f} s"
    )


def sweep(data: dict[str, Any], min_size: int) -> list[dict[str, Any]]:
    """Every algorithm at every threshold of ``SETTINGS`` on one set, printed as it goes."""
    results = []
    for algorithm, options, thresholds in SETTINGS:
        for threshold in thresholds:
            results.append(run(data, algorithm, options, threshold, min_size))
            print(describe(results[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "datasets" / "lfw")
    parser.add_argument("--min-size", type=int, default=2)
    parser.add_argument("--json", type=Path, help="Write every result to this file.")
    args = parser.parse_args()

    started = time.perf_counter()
    vectors = load_vectors(args.lfw)
    sets = build_sets(all_images(args.lfw), vectors)
    for name in ("dev", "test"):
        data = sets[name]
        print(
            f"{name}: {data['people']} people, {data['images']} images, faces found in {data['faces']}; "
            f"+ {data['distractors']} one-image distractors; {len(data['paths'])} faces to cluster"
        )
    print(f"test distractors: {sets['singles_used']} single-image people (with a face found), "
          f"{sets['test']['distractors'] - sets['singles_used']} first images of two-image people")

    results: dict[str, list[dict[str, Any]]] = {"dev": [], "test_sweep": [], "test_chosen": []}
    print("\n== development set: sweep ==")
    results["dev"] = sweep(sets["dev"], args.min_size)

    print("\n== test set: each algorithm at the setting with the best BCubed F on the development set ==")
    for algorithm in dict.fromkeys(name for name, _, _ in SETTINGS):
        best = max((r for r in results["dev"] if r["algorithm"] == algorithm), key=lambda r: r["bcubed_f"])
        result = run(sets["test"], algorithm, best["options"], best["threshold"], args.min_size)
        results["test_chosen"].append(result)
        print(describe(result))
    raw = raw_descriptors()
    if raw is not None:
        result = dlib_example(sets["test"], raw, args.min_size)
        results["test_chosen"].append(result)
        print(describe(result))
    print(f"(true: {sets['test']['people']} people in clusters, {sets['test']['distractors']} distractors alone)")

    print("\n== test set added in parts (a saved collection growing), default algorithm at its dev-chosen threshold ==")
    best = max((r for r in results["dev"] if r["algorithm"] == SETTINGS[0][0]), key=lambda r: r["bcubed_f"])
    for batches in (1, 2, 4, 16):
        result = incremental(sets["test"], best["algorithm"], best["options"], best["threshold"], args.min_size, batches)
        results.setdefault("test_incremental", []).append(result)
        print(describe(result))

    print("\n== test set: the whole sweep (for reference only; parameters were chosen on the dev set) ==")
    results["test_sweep"] = sweep(sets["test"], args.min_size)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
