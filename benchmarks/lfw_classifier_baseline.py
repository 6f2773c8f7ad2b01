"""Few-shot on LFW: faceshot's nearest-neighbour matching vs a classifier retrained on the enrolled faces.

    python benchmarks/lfw_classifier_baseline.py [--lfw ../shared/datasets/lfw] [--shots 1 2 5]

Embeds every LFW image once (HOG, the central face), then for each K runs the open-set protocol of
``faceshot eval identify`` (K photos enrolled per known person, 30% of the eligible people and
everyone with K photos or fewer held out as strangers, seed 0) with and without
``--baseline classifier`` (scikit-learn logistic regression on the enrolled embeddings).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from faceshot.bulk import one_vector_per_file
from faceshot.evaluate.open_set import evaluate_open_set, list_people

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "datasets" / "lfw")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 2, 5])
    args = parser.parse_args()
    images = args.lfw / "images"
    started = time.perf_counter()
    paths = [photo for photos in list_people(images).values() for photo in photos]
    vectors = one_vector_per_file(paths, multiple="central")
    print(f"{len(paths)} images embedded in {time.perf_counter() - started:.0f} s; no face in {len(paths) - len(vectors)}")
    print("| K | people enrolled | strangers | mated / non-mated probes | method | rank-1 | FNIR@FPIR 1e-2 | FNIR@FPIR 1e-3 |")
    print("|---|---|---|---|---|---|---|---|")
    for shots in args.shots:
        begun = time.perf_counter()
        run = evaluate_open_set(images, enroll=shots, unknown_fraction=0.3, seed=0, baseline=True, vectors=vectors)
        for method, result in run.results.items():
            f = result.summary()
            rates = [f[f"fnir_at_fpir_{fpir:g}"] for fpir in (1e-2, 1e-3)]
            cells = ["n/a" if r is None else f"{r:.2%}" for r in rates]
            print(f"| {shots} | {run.people_enrolled} | {run.strangers} | {f['mated_probes']} / {f['nonmated_probes']} | "
                  f"{method} | {f['rank1']:.2%} | {cells[0]} | {cells[1]} |")
        print(f"(K={shots}: {time.perf_counter() - begun:.0f} s)", flush=True)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
