"""PostgreSQL records against SQLite's: concurrent writes, another host's next search, a new host's
first search, "among these people", and pgvector's HNSW with a group filter.

Runs a throwaway PostgreSQL 18 + pgvector on 127.0.0.1 (faceshot.sandbox.postgres, fsync on) and
a SQLite file in a temporary folder, both written through the same store (LocalStore):

1. **Concurrent writers**: 1 and 4 processes, each adding ``--writes`` faces one transaction at a
   time (a new person each, as enrollment does): writes per second in all, and each write's p50/p99.
2. **Galleries of ``--size`` faces** (128-D random unit vectors, 10 faces a person): a new process's
   first search (PostgreSQL: the index is built from the records; SQLite: read from the snapshot
   file), then another process's next search after one write, and ``identify among`` 1,000 people.
3. **pgvector** (``--pgvector-size`` faces in a ``vector(128)`` column with an HNSW index): a
   search restricted to a group of 0.5% of the faces as a filter on the HNSW scan (post-filtered:
   HNSW returns ``ef_search`` candidates, the filter keeps those of the group), the same with
   pgvector 0.8's iterative scans, and an exact scan of the group's rows.

    python benchmarks/postgres_records.py --size 100000 --writes 200 --pgvector-size 20000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DIM = 128
EMBEDDER = "bench-random"

WRITER = """
import sys, time, json
import numpy as np
sys.path.insert(0, sys.argv[5])
from faceshot.gallery.local import LocalStore
from faceshot.gallery.store import NewFace
where, name, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if sys.argv[6] == "counter":  # the alternative measured: no advisory lock, only the counter row's lock
    from faceshot.gallery.postgres import PostgresDialect
    PostgresDialect.begin_write = lambda self, conn: conn.execute("BEGIN")
store = LocalStore(where, embedder="bench-random", dim=128, create=False)
rng = np.random.default_rng(abs(hash(name)) % 10_000)
times = []
began = time.time()
for i in range(count):
    v = rng.normal(size=128).astype(np.float32)
    start = time.perf_counter()
    store.add_faces(f"{name}-{i}", [NewFace(v / np.linalg.norm(v), sha256=f"{name}-{i}")], create=True)
    times.append(time.perf_counter() - start)
store.close()
open(out, "w").write(json.dumps([began, time.time(), times]))
"""

READER = """
import sys, time
import numpy as np
sys.path.insert(0, sys.argv[2])
from faceshot.gallery.local import LocalStore
store = LocalStore(sys.argv[1], embedder="bench-random", dim=128, create=False)
q = np.random.default_rng(0).normal(size=(1, 128)).astype(np.float32)
start = time.perf_counter(); store.search(q, 10); first = time.perf_counter() - start
print(f"{first:.4f}", flush=True)
for line in sys.stdin:          # one line per write made by the parent: search once more
    start = time.perf_counter(); store.search(q, 10); print(f"{time.perf_counter() - start:.5f}", flush=True)
store.close()
"""


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def new_store(where: str):
    from faceshot.gallery.local import LocalStore

    return LocalStore(where, embedder=EMBEDDER, dim=DIM)


def writers(where: str, processes: int, writes: int, folder: Path, lock: str = "advisory") -> tuple[float, list[float]]:
    new_store(where).close()
    outs = [folder / f"w{processes}-{i}.json" for i in range(processes)]
    children = [
        subprocess.Popen([sys.executable, "-c", WRITER, where, f"w{processes}-{i}", str(writes), str(out), str(REPO), lock])
        for i, out in enumerate(outs)
    ]
    for child in children:
        assert child.wait() == 0
    import json

    # The rate over the time every writer was writing (from the first start to the last end),
    # leaving out the processes' start-up.
    runs = [json.loads(out.read_text()) for out in outs]
    wall = max(run[1] for run in runs) - min(run[0] for run in runs)
    return processes * writes / wall, [t for run in runs for t in run[2]]


def fill(where: str, faces: int) -> np.ndarray:
    from faceshot.gallery.store import NewFace, PersonRecord

    vectors = unit(np.random.default_rng(faces), faces)
    store = new_store(where)
    for chunk in range(0, faces, 20_000):
        store.import_people(
            PersonRecord(f"p{start // 10:07d}", {}, ("small",) if start < 500 else (), None,
                         tuple(NewFace(v, sha256=f"{start}-{j}") for j, v in enumerate(vectors[start : start + 10])))
            for start in range(chunk, min(faces, chunk + 20_000), 10)
        )
    if "://" not in where:
        store.search(vectors[:1], 1)  # SQLite: the snapshot file the next process opens
        store._vectors.save()
    store.close()
    return vectors


def galleries(where: str, size: int) -> dict[str, float]:
    vectors = fill(where, size)
    reader = subprocess.Popen([sys.executable, "-c", READER, where, str(REPO)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    first = float(reader.stdout.readline())
    store = new_store(where)
    store.search(vectors[:1], 1)
    rng = np.random.default_rng(1)
    from faceshot.gallery.store import NewFace

    next_search = []
    for i in range(15):
        store.add_faces(f"new-{i}", [NewFace(unit(rng, 1)[0])], create=True)
        reader.stdin.write("\n")
        reader.stdin.flush()
        next_search.append(float(reader.stdout.readline()))
    reader.stdin.close()
    reader.wait()
    friends = [f"p{i:07d}" for i in rng.choice(size // 10, min(1000, size // 10), replace=False)]
    among = []
    for i in range(15):
        start = time.perf_counter()
        chosen = store.embeddings(friends)  # what identify(among=) fetches, by key, then scores exactly
        scores = max(float((unit(rng, 1) @ v.T).max()) for v in chosen.values())
        among.append(time.perf_counter() - start)
        store._vectors_of = (-1, {})  # no cache between rounds: each round reads the 1,000 people's vectors
        assert scores > -1
    store.close()
    return {"first": first, "next": statistics.median(next_search), "next_max": max(next_search),
            "among": statistics.median(among)}


def pgvector(server, size: int) -> None:
    import psycopg

    url = server.create_database(f"pgvector_{size}")
    vectors = unit(np.random.default_rng(size), size)
    group = np.arange(size // 200)  # 0.5% of the faces
    rng = np.random.default_rng(2)
    probes = vectors[rng.choice(group, 20)] + rng.normal(scale=0.02, size=(20, DIM)).astype(np.float32)
    texts = ["[" + ",".join(f"{x:.6f}" for x in probe) + "]" for probe in probes]
    truths = [set(np.argsort(-(vectors[group] @ probe))[:10].tolist()) for probe in probes]
    rows: list[tuple[str, float, int, float]] = []

    def measure(conn, label: str, sql: str) -> str:
        recalls, counts, times = [], [], []
        for text, truth in zip(texts, truths):
            start = time.perf_counter()
            ids = [row[0] for row in conn.execute(sql, (text,))]
            times.append(time.perf_counter() - start)
            recalls.append(len(truth & set(ids)) / 10)
            counts.append(len(ids))
        rows.append((label, float(np.mean(recalls)), min(counts), statistics.median(times) * 1000))
        plan = [row[0] for row in conn.execute("EXPLAIN " + sql, (texts[0],))]
        return next((line.strip() for line in plan if "Scan" in line), plan[0])

    filtered = "SELECT id FROM faces WHERE grp = 1 ORDER BY embedding <=> %s::vector LIMIT 10"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE faces (id BIGINT PRIMARY KEY, grp INT, embedding vector(128))")
        with conn.cursor().copy("COPY faces (id, grp, embedding) FROM STDIN") as copy:
            for i, v in enumerate(vectors):
                copy.write_row((i, 1 if i < len(group) else 0, "[" + ",".join(f"{x:.6f}" for x in v) + "]"))
        start = time.perf_counter()
        conn.execute("CREATE INDEX ON faces USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
        built = time.perf_counter() - start
        conn.execute("ANALYZE faces")
        # No index on grp yet: the planner takes the HNSW scan and filters what it returns.
        plans = [measure(conn, "HNSW, group as a filter (ef_search 40)", filtered)]
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        plans.append(measure(conn, "HNSW, filter, iterative_scan = relaxed_order", filtered))
        conn.execute("RESET hnsw.iterative_scan")
        conn.execute("CREATE INDEX ON faces (grp)")
        conn.execute("ANALYZE faces")
        plans.append(measure(conn, "exact: the group's rows by index, then sorted", filtered))
    print(f"\npgvector 0.8.5, {size:,} faces (128-D), HNSW m=16 ef_construction=64 built in {built:.1f} s; "
          f"a group of {len(group)} faces ({len(group) / size:.1%}), 20 probes near its faces, top 10")
    print("| search | recall@10 (mean) | rows returned of 10 (fewest) | p50 ms | plan |")
    print("|---|---:|---:|---:|---|")
    for (label, recall, fewest, ms), plan in zip(rows, plans):
        print(f"| {label} | {recall:.2f} | {fewest} | {ms:.1f} | {plan.split('  (cost')[0]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--parts", default="writers,galleries,pgvector", help="which tables to make")
    parser.add_argument("--pgvector-size", type=int, default=20_000, help="faces in the pgvector table")
    args = parser.parse_args()
    from faceshot.sandbox.postgres import PostgresServer

    with PostgresServer(durable=True) as server, tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        print(f"PostgreSQL 18 (fsync on) on 127.0.0.1 against a SQLite file; load average {os.getloadavg()[0]:.1f}")
        parts = set(args.parts.split(","))
        if "writers" in parts:
            print("\n| records (writers' lock) | writers | writes/s in all | write p50 ms | write p99 ms |")
            print("|---|---:|---:|---:|---:|")
        for backend, lock in () if "writers" not in parts else (("sqlite", "BEGIN IMMEDIATE"), ("postgresql", "advisory"), ("postgresql", "counter")):
            for processes in (1, 4):
                where = (str(root / f"w{processes}.db") if backend == "sqlite"
                         else server.create_database(f"writers_{lock}_{processes}"))
                rate, times = writers(where, processes, args.writes, root, lock)
                ms = np.array(times) * 1000
                print(f"| {backend} ({lock}) | {processes} | {rate:.0f} | {np.percentile(ms, 50):.1f} | "
                      f"{np.percentile(ms, 99):.1f} |", flush=True)
        if "galleries" in parts:
            print("\n| records | faces | new process's first search s | another process's next search ms (median, max of 15) | among 1,000 people: fetch + score ms |")
            print("|---|---:|---:|---:|---:|")
        for backend in () if "galleries" not in parts else ("sqlite", "postgresql"):
            where = str(root / "big.db") if backend == "sqlite" else server.create_database("big")
            found = galleries(where, args.size)
            print(f"| {backend} | {args.size:,} | {found['first']:.2f} | {found['next'] * 1000:.1f} ({found['next_max'] * 1000:.1f}) "
                  f"| {found['among'] * 1000:.1f} |", flush=True)
        if "pgvector" in parts:
            pgvector(server, args.pgvector_size)


if __name__ == "__main__":
    main()
