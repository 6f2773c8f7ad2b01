"""Milvus as the vector engine against the local backend (SQLite + FAISS), on synthetic LFW-like galleries.

    nice -n 10 python benchmarks/milvus_bench.py --faces 100000 [--probes 200] [--milvus-index "hnsw;ivf_flat:nprobe=64;ivf_sq8"] [--json OUT]
    nice -n 10 python benchmarks/milvus_bench.py --faces 100000 --group-layouts

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
#: The unpacked Milvus binaries: $FACESHOT_MILVUS_CACHE, else the repository's .cache.
CACHE = Path(os.environ.get("FACESHOT_MILVUS_CACHE") or Path(__file__).resolve().parents[1] / ".cache" / "milvus-2.3.5")


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
    held = vectors if len(members) == len(vectors) else vectors[members]
    for start in range(0, len(probes), 64):
        scores = probes[start : start + 64] @ held.T
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
        named_array = np.array(named)
        differ = np.flatnonzero(named_array != exact)
        row[scope] = {**percentiles(latencies), **agreement(named_array, exact),
                      "faces": len(members), "threshold": round(thresholds[0], 4),
                      # which probes differ: (probe, named, exact search's, its score, threshold)
                      "differ": [(int(i), int(named_array[i]), int(exact[i]),
                                  round(float(probes[i] @ vectors[exact[i]]), 5) if exact[i] >= 0 else None,
                                  round(thresholds[i], 5)) for i in differ[:10]]}
        print(f"  {label} {scope}: {json.dumps(row[scope])}", flush=True)
    return row


def compare_group_schemas(server: Any, vectors: np.ndarray, groups: np.ndarray, probes: np.ndarray) -> list[dict[str, Any]]:
    """The two ways to search a group inside Milvus, on raw collections (HNSW, same parameters):
    one row per face with an ARRAY of its groups (``array_contains``: faceshot's schema), and one
    row per face and group with the group as partition key (``group == g``). Latency (one query
    at a time) and recall@1 against exact search inside the group, for group g0 (~15% of the
    gallery) and the group of the first 1% of people (g_small)."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=server.uri)
    small = np.arange(max(1, len(vectors) // 100))
    members = {"g0": np.flatnonzero((groups == 0).any(1)), "g_small": small}
    layouts = []
    for layout in ("array", "rows"):
        name = f"layout_{layout}"
        schema = MilvusClient.create_schema(auto_id=layout == "rows")
        if layout == "array":
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("groups", DataType.ARRAY, element_type=DataType.INT64, max_capacity=64)
        else:
            schema.add_field("pk", DataType.INT64, is_primary=True)
            schema.add_field("id", DataType.INT64)
            schema.add_field("grp", DataType.INT64, is_partition_key=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params={"M": 16, "efConstruction": 200})
        client.create_collection(name, schema=schema, index_params=index, **({"num_partitions": 16} if layout == "rows" else {}))
        t = time.perf_counter()
        stored = 0
        for start_row in range(0, len(vectors), 5000):
            chunk = range(start_row, min(len(vectors), start_row + 5000))
            if layout == "array":
                rows = [{"id": i, "vector": vectors[i].tolist(),
                         "groups": [int(g) for g in groups[i] if g >= 0] + ([10] if i < len(small) else [])} for i in chunk]
            else:  # g_small is group 10
                rows = [{"id": i, "grp": int(g), "vector": vectors[i].tolist()} for i in chunk for g in groups[i] if g >= 0]
                rows += [{"id": i, "grp": 10, "vector": vectors[i].tolist()} for i in chunk if i < len(small)]
            client.insert(name, rows)
            stored += len(rows)
        client.flush(name)
        while True:
            info = client.describe_index(name, "vector")
            if int(info.get("pending_index_rows", 0)) == 0 and int(info.get("indexed_rows", 0)) >= int(info.get("total_rows", 0)):
                break
            time.sleep(0.5)
        row: dict[str, Any] = {"layout": layout, "rows": stored, "load_and_index_s": round(time.perf_counter() - t, 1)}
        for group, ids in members.items():
            number = 0 if group == "g0" else 10
            expression = f"array_contains(groups, {number})" if layout == "array" else f"grp == {number}"
            client.search(name, data=[probes[0].tolist()], limit=5, filter=expression,
                          search_params={"metric_type": "IP", "params": {"ef": 64}}, consistency_level="Strong")
            latencies, hits = [], 0
            truth = ids[(probes @ vectors[ids].T).argmax(1)]
            for probe, best in zip(probes, truth):
                t = time.perf_counter()
                answer = client.search(name, data=[probe.tolist()], limit=5, filter=expression, output_fields=["id"],
                                       search_params={"metric_type": "IP", "params": {"ef": 64}}, consistency_level="Eventually")
                latencies.append(time.perf_counter() - t)
                hits += bool(answer[0]) and int(answer[0][0]["entity"]["id"]) == int(best)
            row[group] = {**percentiles(latencies), "recall_at_1": round(hits / len(probes), 4), "faces": len(ids)}
        print(f"  group layout {json.dumps(row)}", flush=True)
        layouts.append(row)
        client.drop_collection(name)
    client.close()
    return layouts


def compare_among(big: Path, small: Path, people: int, engine: Any, probes: np.ndarray, names: np.ndarray,
                  vectors: np.ndarray, groups: np.ndarray, friends: np.ndarray) -> dict[str, Any]:
    """Among-friends identification on the full gallery and on one of its first ``people`` people,
    one probe on each in turn (so the machine's load falls on both alike): p50/p99 and their ratio."""
    from faceshot.gallery import Gallery
    from faceshot.gallery.local import LocalStore
    from faceshot.gallery.store import NewFace, PersonRecord

    copy = LocalStore(small, embedder=engine.embedder.space, dim=engine.embedder.dim)
    for start_row in range(0, people, CHUNK):
        copy.import_people(
            PersonRecord(str(names[i]), {}, tuple(f"g{g}" for g in groups[i] if g >= 0), None, (NewFace(vectors[i]),))
            for i in range(start_row, min(people, start_row + CHUNK))
        )
    copy.close()
    friend_names = [str(names[i]) for i in friends]
    latencies: dict[str, list[float]] = {"big": [], "small": []}
    answers: dict[str, list[str | None]] = {"big": [], "small": []}
    with Gallery(big, engine=engine) as on_big, Gallery(small, engine=engine) as on_small:
        for label, gallery in (("big", on_big), ("small", on_small)):
            gallery.identify_embeddings(probes[0], fpir=0.01, among=friend_names)
        for probe in probes:
            for label, gallery in (("big", on_big), ("small", on_small)):
                t = time.perf_counter()
                [found] = gallery.identify_embeddings(probe, fpir=0.01, among=friend_names)
                latencies[label].append(time.perf_counter() - t)
                answers[label].append(found.identity)
    result = {
        "faces": {"big": len(names), "small": people},
        "big": percentiles(latencies["big"]),
        "small": percentiles(latencies["small"]),
        "same_decisions": answers["big"] == answers["small"],
    }
    result["p50_ratio"] = round(result["big"]["p50_ms"] / result["small"]["p50_ms"], 3)
    print(f"among {FRIENDS} friends, {len(names):,} against {people:,} faces: {json.dumps(result)}", flush=True)
    return result


def load_average() -> str:
    """The 1/5/15-minute load averages (the machine is shared: figures are read against them)."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def wait_indexed(engine: Any, timeout: float, every: float = 30.0) -> None:
    """``engine.wait_indexed``, printing every ``every`` seconds how far Milvus got: rows indexed and
    pending, sealed segments and the loaded ones served from an index (how compaction shows)."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while True:
        try:
            engine.wait_indexed(timeout=min(every, max(1.0, deadline - time.monotonic())))
            return
        except Exception:
            if time.monotonic() >= deadline:
                raise
        client, name = engine._milvus(), engine.collection
        info = client.describe_index(name, "vector")
        stored = client.list_persistent_segments(name)
        loaded = client.list_loaded_segments(name)
        print(f"    {time.monotonic() - started:.0f} s: indexed {info.get('indexed_rows')} of {info.get('total_rows')}, "
              f"pending {info.get('pending_index_rows')}; {len(stored)} stored segments "
              f"({', '.join(f'{s.num_rows}' for s in stored)}); loaded {len(loaded)}, "
              f"{sum(1 for s in loaded if s.index_id)} from an index; load {load_average()}", flush=True)


def main() -> None:
    namespace.reexec()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("faceshot.gallery.gallery").setLevel(logging.ERROR)  # FPIR beyond calibration: known
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=200, help="mated probes, and as many non-mated")
    parser.add_argument("--milvus-index", default="hnsw;ivf_flat;ivf_sq8", help='kinds, ";"-separated, with URL options: "hnsw:ef=256;ivf_sq8:nprobe=64"')
    parser.add_argument("--local", action=argparse.BooleanOptionalAction, default=True, help="measure the local backend too")
    parser.add_argument("--among-small", type=int, default=0,
                        help="also build a gallery of the first N people and time among-friends searches on both, interleaved")
    parser.add_argument("--group-layouts", action="store_true", help="only compare the two group layouts inside Milvus")
    parser.add_argument("--milvus-config", action="append", default=[], metavar="KEY=VALUE",
                        help="a milvus.yaml entry for the throwaway server, e.g. dataCoord.compaction.enableAutoCompaction=false")
    parser.add_argument("--index-timeout", type=float, default=3600, help="seconds to wait for Milvus's index before giving up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import faceshot
    from faceshot.evaluate.synthetic import lfw_dlib_model
    from faceshot.gallery import Gallery
    from faceshot.gallery.local import LocalStore
    from faceshot.gallery.store import NewFace, PersonRecord
    from faceshot.sandbox.milvus import start

    settings = {}
    for entry in args.milvus_config:
        key, _, value = entry.partition("=")
        settings[key] = {"true": True, "false": False}.get(value.lower(), int(value) if value.isdigit() else
                                                          float(value) if value.replace(".", "", 1).isdigit() else value)
    print(f"load average at the start {load_average()}; Milvus settings {settings or 'default'}", flush=True)
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
    # Friends among the first --among-small people, so the same list exists in the smaller gallery.
    friends = np.sort(rng.choice(min(args.faces, args.among_small or args.faces), FRIENDS, replace=False))
    # Half the mated probes are of friends, so "among" has people to name.
    swap = np.arange(0, args.probes, 2)
    friend_people = friends[rng.integers(0, FRIENDS, len(swap))]
    probes[swap] = model.photos(people, friend_people, seed=args.seed + 5)
    names = np.array([f"person-{i:07d}" for i in range(args.faces)])
    print(f"{args.faces:,} faces generated in {time.perf_counter() - t:.0f} s; {args.probes} mated + {args.probes} "
          f"non-mated probes; {os.cpu_count()} cores, shared with other processes", flush=True)

    rows: list[dict[str, Any]] = []
    if args.group_layouts:
        with tempfile.TemporaryDirectory(prefix="milvus-bench-") as folder:
            server = start(Path(folder) / "milvus", cache=CACHE)
            try:
                layouts = compare_group_schemas(server, vectors, groups, probes)
            finally:
                server.stop()
        if args.json:
            args.json.write_text(json.dumps({"faces": args.faces, "layouts": layouts}, indent=1))
        return
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

        # Records only (among-friends never searches the vectors): before the engines, so it is measured
        # even when building a large index runs out of time.
        among_scales = None
        if args.among_small:
            among_scales = compare_among(
                db, Path(folder) / "small.db", args.among_small, engine, probes, names, vectors, groups, friends
            )
        backends: list[tuple[str, str | None]] = []
        if args.local:
            backends.append(("local (SQLite + FAISS auto)", None))
        server = start(Path(folder) / "milvus", cache=CACHE,
                       settings=settings)
        try:
            for number, spec in enumerate(filter(None, args.milvus_index.split(";"))):
                # "hnsw" or "hnsw:ef=256" (URL options after the colon, comma-separated)
                kind, _, options = spec.partition(":")
                extra = dict(option.split("=", 1) for option in options.split(",") if option)
                backends.append((f"milvus {spec}", server.url(f"bench_{number}_{kind}", index=kind, **extra)))
            for label, url in backends:
                row: dict[str, Any] = {"backend": label}
                gallery = Gallery(db, engine=engine, vectors=url)
                store = gallery.store
                t = time.perf_counter()
                store.search(probes[:1], 1)  # applies the whole log: the index or collection is built
                row["load_s"] = round(time.perf_counter() - t, 1)
                if url is not None:
                    t = time.perf_counter()
                    wait_indexed(store._engine, args.index_timeout)
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
    print(f"load average at the end {load_average()}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process {peak:.0f} MB (the Milvus server's own memory is not included)")
    if args.json:
        args.json.write_text(json.dumps({"faces": args.faces, "probes": 2 * args.probes, "records_s": records_s,
                                         "rows": rows, "among_scales": among_scales}, indent=1))


if __name__ == "__main__":
    main()
