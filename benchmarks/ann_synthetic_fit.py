"""Fit the synthetic face generator to real dlib vectors of LFW, and print the fit criterion.

    nice -n 10 python benchmarks/ann_synthetic_fit.py [--vectors .cache/lfw_far_vectors.npz] [--fit]

``--vectors``: an ``.npz`` with ``vectors`` (every LFW image's ``dlib-resnet`` unit vector, HOG
detector, most central face) and ``paths`` (``Person/Person_0001.jpg``), as
``benchmarks/calibrate_lfw_far.py`` caches them (13,197 images with a face). ``--fit`` refits
(a Gaussian mixture of ``--components`` components, then six numbers by least squares; tens of
minutes on a shared core) and rewrites ``faceshot/evaluate/data/dlib_resnet_lfw.npz``; without it
the shipped fit is checked.
Criterion (issue 15): genuine/impostor score quantiles (1, 5, 50, 95, 99%) within 0.005 of
LFW's; one-shot rank-1 and FNIR at FPIR 1% on the 1,680-person gallery within 3 points of LFW's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from faceshot.evaluate import synthetic

ROOT = Path(__file__).resolve().parents[1]


def hardness(vectors: np.ndarray, person: np.ndarray) -> None:
    """How hard approximate search is on LFW's vectors and on a synthetic set of the same layout:
    the share of queries (every image against all the others) whose exact nearest neighbour each
    small index finds first. Equal figures mean the generator is neither easier nor harder."""
    import faiss

    synthetic_set = synthetic.lfw_like(synthetic.lfw_dlib_model(), seed=3)
    for label, x in (("LFW", vectors), ("synthetic", synthetic_set.vectors)):
        x = np.ascontiguousarray(x, dtype=np.float32)
        exact = faiss.IndexFlatIP(x.shape[1])
        exact.add(x)
        _, truth = exact.search(x, 2)  # the first is the image itself
        found = {}
        for spec, param in (("HNSW8,Flat", 8), ("IVF64,Flat", 2), ("PQ16x4fs", None)):
            index = faiss.index_factory(x.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
            index.train(x)
            index.add(x)
            if spec.startswith("HNSW"):
                faiss.downcast_index(index).hnsw.efSearch = param
            if spec.startswith("IVF"):
                faiss.extract_index_ivf(index).nprobe = param
            _, ids = index.search(x, 2)
            found[spec] = round(float((ids[:, 1] == truth[:, 1]).mean()), 3)
        print(f"approximate-search hardness, {label}: share of nearest neighbours found {found}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=Path, default=ROOT / ".cache" / "lfw_far_vectors.npz")
    parser.add_argument("--fit", action="store_true", help="refit and rewrite the shipped parameters")
    parser.add_argument("--components", type=int, default=synthetic.COMPONENTS, help="mixture components (with --fit)")
    parser.add_argument("--rank", type=int, default=synthetic.RANK, help="within-person subspace rank, 0 for all (with --fit)")
    parser.add_argument("--between-rank", type=int, default=synthetic.BETWEEN_RANK, help="directions kept per mixture component, 0 for all (with --fit)")
    parser.add_argument("--evaluations", type=int, default=60, help="least-squares evaluations (with --fit)")
    args = parser.parse_args()
    with np.load(args.vectors) as data:
        vectors, paths = data["vectors"].astype(np.float32), data["paths"]
    person = np.array([str(p).split("/")[0] for p in paths])
    print(f"{len(vectors)} LFW vectors of {len(set(person))} people")
    if args.fit:
        started = time.perf_counter()
        model = synthetic.fit(vectors, person, components=args.components, rank=args.rank, between_rank=args.between_rank, evaluations=args.evaluations)
        model.save(synthetic.FIT_FILE)
        print(f"fitted in {time.perf_counter() - started:.0f} s: {len(model.weights)} components, rank {model.rank}, "
              f"sigmas identity {model.sigma_identity:.4f}, "
              f"person {model.sigma_person:.4f}, photo {model.sigma_photo:.4f}; wrote {synthetic.FIT_FILE.name}")
        synthetic.lfw_dlib_model.cache_clear()
    report = synthetic.criterion(synthetic.lfw_dlib_model(), vectors, person)
    print(json.dumps(report, indent=1))
    hardness(vectors, person)
    lfw, syn = report["lfw"]["one_shot"], report["synthetic"]["one_shot"]
    print(f"quantile gap {report['largest_quantile_gap']:.4f} (target <= 0.005); "
          f"rank-1 {syn['rank1']:.1%} vs LFW {lfw['rank1']:.1%}, FNIR@FPIR1% {syn['fnir']:.1%} vs LFW {lfw['fnir']:.1%} "
          f"(target: within 3 points)")


if __name__ == "__main__":
    main()
