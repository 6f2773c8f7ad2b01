"""Index kinds against exact search on synthetic LFW-like galleries: cost, speed and decisions.

    nice -n 10 python benchmarks/ann_bench.py --faces 100000 [--kinds flat,hnsw,ivfpq] [--probes 1000] [--json OUT]
    python benchmarks/ann_bench.py --faces 10000000 --kinds "flat;ivfsq;ivfpq" --latency-probes 200   # 10 M, ~20 GB
    python benchmarks/ann_bench.py --faces 10000000 --kinds "flat;hnsw" --lean --latency-probes 200   # 10 M HNSW

A gallery of ``--faces`` people with one face each (faceshot.evaluate.synthetic, fitted to dlib
vectors of LFW), ``--probes`` mated probes (new photos of enrolled people) and as many non-mated
ones (strangers). Every kind is built through faceshot's own index classes
(:func:`faceshot.gallery.index.create_index`) in the same run, then:

- build time (adding every vector, training included), serialized size (the ``.faiss`` payload),
  bytes per face, and the process's resident-memory growth while building;
- single-query latency on one thread (p50, p99 over the probes) and batch QPS (all probes at
  once, every thread);
- decisions at the product's default operating point (FPIR 1% over the gallery's faces, as
  ``Gallery.identify`` resolves it): the share of the mated probes exact search names correctly
  that the index names correctly too; agreement with exact search over every probe, and over
  the probes that either search names (so "unknown everywhere" cannot carry the figure).
  Indexes of compressed codes are rescored exactly on their ``rerank`` candidates, with the
  vectors read from an in-memory copy standing for the records (the product reads SQLite).

``--lean`` makes room for a 10 M-face HNSW graph (7.9 GB) beside the 5.1 GB of vectors: exact
search (``flat``, the reference) scans the generated array itself with ``faiss.knn`` (the
arithmetic of ``FlatIndex``, without its 5.1 GB copy; its bytes per face are then the array's),
and an index's size is what ``faiss.write_index`` writes to a temporary file rather than
``to_bytes()`` held in memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from faceshot.evaluate.synthetic import lfw_dlib_model
from faceshot.gallery.index import FaissIndex, _faiss, create_index, parse_kind


def rss_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def default_threshold(faces: int) -> tuple[float, float]:
    from faceshot.gallery import Gallery

    with tempfile.TemporaryDirectory() as folder, Gallery(Path(folder) / "g.db") as gallery:
        point = gallery.operating_point(fpir=0.01, faces=faces)
    return point.threshold, point.far


def top1(index: Any, probes: np.ndarray, records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best face and its exact score per probe (compressed codes rescored against ``records``)."""
    k = index.candidates(1) if isinstance(index, FaissIndex) else 1
    scores, ids = index.search(probes, k)
    if not index.exact_scores:
        exact = np.einsum("qd,qkd->qk", probes, records[np.clip(ids, 0, None)])
        exact[ids < 0] = -np.inf
        best = exact.argmax(1)
        return ids[np.arange(len(ids)), best], exact[np.arange(len(ids)), best]
    return ids[:, 0], scores[:, 0]


class InPlaceExact:
    """Exact inner-product search over an array without copying it (``--lean``'s reference)."""

    exact_scores = True

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def search(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        return faiss.knn(np.ascontiguousarray(probes, np.float32), self.vectors, k, metric=faiss.METRIC_INNER_PRODUCT)


def written_size(index: Any) -> int:
    """Bytes of an index's serialized form, streamed to a temporary file (``--lean``)."""
    faiss = _faiss()
    if not isinstance(index, FaissIndex):
        return len(index.to_bytes())
    size = len(faiss.serialize_index(index._pending)) + 8 * len(index._tomb())
    if index._index is not None:
        with tempfile.NamedTemporaryFile(suffix=".faiss") as file:
            faiss.write_index(index._index, file.name)
            size += os.path.getsize(file.name)
    return size


BUILT: dict[str, Any] = {}


def run(kind: str, vectors: np.ndarray, probes: np.ndarray, threshold: float, truth: np.ndarray,
        latency_probes: int = 1000, lean: bool = False) -> dict[str, Any]:
    faiss = _faiss()
    structure, params = parse_kind(kind)
    if lean and structure == "flat":
        index, build, grown, size = InPlaceExact(vectors), 0.0, 0.0, vectors.nbytes + 8 * len(vectors)
    elif structure in BUILT:  # the same index with other search parameters: not built again
        index, build, grown, size = BUILT[structure]
        index.set_params(params)
    else:
        BUILT.clear()  # one index in memory at a time
        before = rss_mb()
        started = time.perf_counter()
        index = create_index(kind, vectors.shape[1])
        index.add(np.arange(len(vectors)), vectors)  # all at once, as a gallery's index is built from its records
        build = time.perf_counter() - started
        grown = rss_mb() - before
        size = written_size(index) if lean else len(index.to_bytes())
        BUILT[structure] = (index, build, grown, size)
    # Single queries on one thread: the interactive case.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    latencies = []
    for probe in probes[:: max(1, len(probes) // latency_probes)][:latency_probes]:  # mated and strangers alike
        t = time.perf_counter()
        top1(index, probe[None, :], vectors)
        latencies.append(time.perf_counter() - t)
    faiss.omp_set_num_threads(threads)
    t = time.perf_counter()
    ids, scores = top1(index, probes, vectors)
    qps = len(probes) / (time.perf_counter() - t)
    named = np.where(scores >= threshold, ids, -1)
    return {
        "kind": kind,
        "spec": getattr(index, "spec", "Flat"),
        "build_s": round(build, 2),
        "file_mb": round(size / 2**20, 1),
        "bytes_per_face": round(size / len(vectors), 1),
        "rss_growth_mb": round(grown, 1),
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 3),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 3),
        "batch_qps": round(qps, 1),
        "named": named,
    }


def main() -> None:
    # Gallery.operating_point warns, at every identification, that FPIR 1% over this many faces lies
    # beyond the calibration; the warning is known and its cost (a stderr write) is not the index's.
    logging.getLogger("faceshot.gallery.gallery").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--kinds", default="flat,hnsw,ivfpq")
    parser.add_argument("--probes", type=int, default=1000, help="mated probes, and as many non-mated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--latency-probes", type=lambda v: max(1, int(v)), default=1000,
                        help="probes timed one at a time (exact search over 10 M faces takes about half a second each)")
    parser.add_argument("--lean", action="store_true",
                        help="exact search in place over the generated vectors, sizes streamed to a file (10 M-face graphs)")
    args = parser.parse_args()
    model = lfw_dlib_model()
    t = time.perf_counter()
    people, gallery = model.gallery(args.faces, seed=args.seed)
    mated = model.mated(people, args.probes, seed=args.seed + 1)
    strangers = model.strangers(args.probes, seed=args.seed + 2)
    del people  # the identities' centres: as large as the gallery itself
    probes = np.concatenate([mated.vectors, strangers])
    truth = np.concatenate([mated.person, np.full(args.probes, -1)])
    threshold, far = default_threshold(args.faces)
    print(f"{args.faces:,} faces generated in {time.perf_counter() - t:.0f} s; {args.probes} mated + {args.probes} "
          f"non-mated probes; default threshold {threshold:.4f} (FPIR 1% over {args.faces:,} faces, FAR {far:.2g}); "
          f"{os.cpu_count()} cores, shared with other processes", flush=True)
    rows = []
    exact = None
    for kind in args.kinds.split(";") if ";" in args.kinds else args.kinds.split(","):
        row = run(kind, gallery.vectors, probes, threshold, truth, args.latency_probes, args.lean)
        named = row.pop("named")
        if exact is None:
            exact = named  # the first kind is the reference (flat)
        right_exact = (exact == truth) & (truth >= 0)
        either = (exact >= 0) | (named >= 0)
        row.update(
            mated_kept=round(float((named[right_exact] == truth[right_exact]).mean()), 5),
            agreement=round(float((named == exact).mean()), 5),
            agreement_named=round(float((named[either] == exact[either]).mean()), 5),
            # Apart: mated probes, and strangers, where a different name is another false match;
            # "verdict": named by both or by neither, whoever the name.
            agreement_mated=round(float((named[truth >= 0] == exact[truth >= 0]).mean()), 5),
            agreement_strangers=round(float((named[truth < 0] == exact[truth < 0]).mean()), 5),
            verdict_strangers=round(float(((named >= 0) == (exact >= 0))[truth < 0].mean()), 5),
            rank1_named=round(float(((named == truth) & (truth >= 0)).sum() / args.probes), 4),
            fpir=round(float((named[truth < 0] >= 0).mean()), 4),
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB; wall {time.perf_counter() - t:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"faces": args.faces, "threshold": threshold, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
