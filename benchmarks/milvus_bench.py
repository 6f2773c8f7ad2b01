"""Milvus as the vector engine against the local backend (SQLite + FAISS), on synthetic LFW-like galleries.

    nice -n 10 python benchmarks/milvus_bench.py --faces 100000 [--probes 200] [--milvus-index hnsw,ivf_flat,ivf_sq8] [--json OUT]

Re-runs itself inside a loopback-only network namespace (root; Milvus binds every interface) and
starts a throwaway standalone Milvus 2.3.5 server there (faceshot.sandbox.milvus). A gallery of
``--faces`` people with one face each (faceshot.evaluate.synthetic, fitted to dlib vectors of LFW)
is written to the records (SQLite, ``import_people`` in chunks); every person is in one or two of
the groups ``g0``..``g9`` (about 15% of the gallery each, so a group search runs inside the engine,
not over the records) and a friends list of 1,000 people is drawn. Then, for the local backend
(``auto`` index) and each Milvus index kind (one collection each):

- loading: the first search applies the whole log (Milvus: upserts of every face, then the index
  is built: ``wait_indexed``), as rates in faces per second; an incremental step too: 1,000 faces
  added one per transaction, then the search that applies them;
- ``Gallery.identify_embeddings`` on one probe at a time: p50/p99 latency (ms) for ``--probes`` mated
  and as many non-mated probes, globally, in one group, and among the 1,000 friends (whose cost
  should not grow with the gallery);
- decisions at FPIR 1% (the threshold identify resolves for the faces searched) against exact
  search over the same faces at the same threshold: agreement over every probe and over the probes
  either names.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceshot.sandbox import namespace  # noqa: E402

GROUPS = 10
FRIENDS = 1000
CHUNK = 20_000


def percentiles(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 2),
    }


def agreement(named: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    either = (named >= 0) | (exact >= 0)
    return {
        "agreement": round(float((named == exact).mean()), 4),
        "agreement_named": round(float((named[either] == exact[either]).mean()), 4) if either.any() else 1.0,
    }


def exact_decisions(probes: np.ndarray, vectors: np.ndarray, members: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """The person exact search names for each probe among ``members`` (row indexes), at its threshold."""
    best = np.full(len(probes), -1, np.int64)
    for start in range(0, len(probes), 64):
        scores = probes[start : start + 64] @ vectors[members].T
        top = scores.argmax(1)
        for row, column in enumerate(top):
            if scores[row, column] >= thresholds[start + row]:
                best[start + row] = members[column]
    return best


def measure(label: str, gallery: Any, probes: np.ndarray, vectors: np.ndarray, groups: np.ndarray,
            friends: np.ndarray, names: np.ndarray) -> dict[str, Any]:
    """Latency and decisions of one backend, globally, in group g0 and among the friends."""
    row: dict[str, Any] = {"backend": label}
    index_of = {name: i for i, name in enumerate(names)}
    everyone = np.arange(len(vectors))
    in_group = np.flatnonzero((groups == 0).any(1))
    friend_names = [str(names[i]) for i in friends]
    for scope, members, options in (
        ("global", everyone, {}),
        ("group", in_group, {"group": "g0"}),
        ("among", friends, {"among": friend_names}),
    ):
        gallery.identify_embeddings(probes[0], fpir=0.01, **options)  # warm: caches, connection
        latencies, named, thresholds = [], [], []
        for probe in probes:
            t = time.perf_counter()
            [found] = gallery.identify_embeddings(probe, fpir=0.01, **options)
            latencies.append(time.perf_counter() - t)
            named.append(-1 if found.identity is None else index_of[found.identity])
            thresholds.append(found.threshold)
        exact = exact_decisions(probes, vectors, members, thresholds)
        row[scope] = {**percentiles(latencies), **agreement(np.array(named), exact),
                      "faces": len(members), "threshold": round(thresholds[0], 4)}
        print(f"  {label} {scope}: {json.dumps(row[scope])}", flush=True)
    return row


def main() -> None:
    namespace.reexec()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("faceshot.gallery.gallery").setLevel(logging.ERROR)  # FPIR beyond calibration: known
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=200, help="mated probes, and as many non-mated")
    parser.add_argument("--milvus-index", default="hnsw,ivf_flat,ivf_sq8")
    parser.add_argument("--local", action=argparse.BooleanOptionalAction, default=True, help="measure the local backend too")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import faceshot
    from faceshot.evaluate.synthetic import lfw_dlib_model
    from faceshot.gallery import Gallery
    from faceshot.gallery.local import LocalStore
    from faceshot.gallery.store import NewFace, PersonRecord
    from faceshot.sandbox.milvus import start

    engine = faceshot.engine()
    model = lfw_dlib_model()
    t = time.perf_counter()
    people, gallery_set = model.gallery(args.faces, seed=args.seed)
    vectors = gallery_set.vectors
    mated = model.mated(people, args.probes, seed=args.seed + 1)
    probes = np.concatenate([mated.vectors, model.strangers(args.probes, seed=args.seed + 2)])
    rng = np.random.default_rng(args.seed + 3)
    groups = np.full((args.faces, 2), -1)
    groups[:, 0] = rng.integers(0, GROUPS, args.faces)
    second = rng.random(args.faces) < 0.5  # half the people are in a second group
    groups[second, 1] = (groups[second, 0] + rng.integers(1, GROUPS, int(second.sum()))) % GROUPS
    friends = np.sort(rng.choice(args.faces, FRIENDS, replace=False))
    # Half the mated probes are of friends, so "among" has people to name.
    swap = np.arange(0, args.probes, 2)
    friend_people = friends[rng.integers(0, FRIENDS, len(swap))]
    probes[swap] = model.photos(people, friend_people, seed=args.seed + 5)
    names = np.array([f"person-{i:07d}" for i in range(args.faces)])
    print(f"{args.faces:,} faces generated in {time.perf_counter() - t:.0f} s; {args.probes} mated + {args.probes} "
          f"non-mated probes; {os.cpu_count()} cores, shared with other processes", flush=True)

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="milvus-bench-") as folder:
        db = Path(folder) / "g.db"
        store = LocalStore(db, embedder=engine.embedder.space, dim=engine.embedder.dim)
        t = time.perf_counter()
        for start_row in range(0, args.faces, CHUNK):
            store.import_people(
                PersonRecord(str(names[i]), {}, tuple(f"g{g}" for g in groups[i] if g >= 0), None, (NewFace(vectors[i]),))
                for i in range(start_row, min(args.faces, start_row + CHUNK))
            )
        records_s = time.perf_counter() - t
        store.close()
        print(f"records (SQLite): {args.faces / records_s:,.0f} faces/s ({records_s:.1f} s)", flush=True)

        backends: list[tuple[str, str | None]] = []
        if args.local:
            backends.append(("local (SQLite + FAISS auto)", None))
        server = start(Path(folder) / "milvus", cache=Path(__file__).resolve().parents[1] / ".cache" / "milvus-2.3.5")
        try:
            for kind in filter(None, args.milvus_index.split(",")):
                backends.append((f"milvus {kind}", server.url(f"bench_{kind}", index=kind)))
            for label, url in backends:
                row: dict[str, Any] = {"backend": label}
                gallery = Gallery(db, engine=engine, vectors=url)
                store = gallery.store
                t = time.perf_counter()
                store.search(probes[:1], 1)  # applies the whole log: the index or collection is built
                row["load_s"] = round(time.perf_counter() - t, 1)
                if url is not None:
                    t = time.perf_counter()
                    store._engine.wait_indexed(timeout=3600)
                    row["index_build_s"] = round(time.perf_counter() - t, 1)
                    row["milvus_rows_per_s"] = round(args.faces / row["load_s"])
                else:
                    store._follower().wait(3600)
                    row["index"] = store.index_info()["resolves_to"]
                print(f"{label}: loaded in {row['load_s']} s {json.dumps({k: v for k, v in row.items() if k != 'backend'})}", flush=True)
                row.update(measure(label, gallery, probes, vectors, groups, friends, names))
                rows.append(row)
                gallery.close()
            # Incremental writes, after every backend was measured on the same faces: 1,000 people
            # enrolled one transaction each, then the search that applies them.
            late = model.strangers(1000, seed=args.seed + 6)
            for number, ((label, url), row) in enumerate(zip(backends, rows)):
                store = LocalStore(db, embedder=engine.embedder.space, dim=engine.embedder.dim, vectors=url)
                store.search(probes[:1], 1)  # the other backends' additions
                t = time.perf_counter()
                for i, vector in enumerate(late):
                    store.add_faces(f"late-{number}-{i}", [NewFace(vector)], create=True)
                written = time.perf_counter() - t
                t = time.perf_counter()
                store.search(probes[:1], 1)
                row["incremental"] = {"records_writes_per_s": round(len(late) / written),
                                      "apply_1000_ms": round(1000 * (time.perf_counter() - t), 1)}
                print(f"  {label} incremental: {json.dumps(row['incremental'])}", flush=True)
                store.close()
        finally:
            server.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process {peak:.0f} MB (the Milvus server's own memory is not included)")
    if args.json:
        args.json.write_text(json.dumps({"faces": args.faces, "probes": 2 * args.probes, "records_s": records_s,
                                         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
