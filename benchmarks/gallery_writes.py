"""Write latency, and the next search's latency in the same and in another process, by gallery size.

The change-log store (this checkout) against the store before it (``--before``, default the
commit before the change log: every write re-saved the whole index file, and another process
rebuilt its index from SQLite at its next search). Both run the same measurement, on the same
random unit vectors, in the same run, one after the other.

For each size: a gallery of N faces (128-D, 10 faces a person) is filled in one transaction; a
writer opens it and a reader in another process opens it and searches once (its index is then
in memory). Then, ``--writes`` times: the writer adds one face to a new person (timed: the write,
acknowledged once committed), searches (timed: its own next search), and the reader searches
(timed: another process's next search, which must notice the write).

    python benchmarks/gallery_writes.py                       # 1k, 10k and 100k faces
    python benchmarks/gallery_writes.py --sizes 1000 --writes 5

Targets (issue: foundation): a write ≤ 25 ms and another process's next search ≤ 250 ms at 100k faces.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DIM = 128
EMBEDDER = "bench-random"
BEFORE = "69b0978"  # the last commit before the change-log store


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill(path: Path, faces: int) -> None:
    from faceshot.gallery.local import LocalStore
    from faceshot.gallery.store import NewFace, PersonRecord

    rng = np.random.default_rng(faces)
    vectors = unit(rng, faces)
    records = [
        PersonRecord(f"p{start // 10}", {}, (), None,
                     tuple(NewFace(v, sha256=f"{start}-{j}") for j, v in enumerate(vectors[start : start + 10])))
        for start in range(0, faces, 10)
    ]
    store = LocalStore(path, embedder=EMBEDDER, dim=DIM)
    store.import_people(records)
    store.close()


def reader(path: str, connection) -> None:  # runs in the other process
    from faceshot.gallery.local import LocalStore

    store = LocalStore(path, embedder=EMBEDDER, dim=DIM)
    probe = unit(np.random.default_rng(1), 1)
    store.search(probe, 5)  # the index is in memory from here on
    connection.send("ready")
    while connection.recv() == "search":
        start = time.perf_counter()
        store.search(probe, 5)
        connection.send(time.perf_counter() - start)
    store.close()


def measure(sizes: list[int], writes: int, workdir: Path) -> list[dict[str, float]]:
    from faceshot.gallery.local import LocalStore
    from faceshot.gallery.store import NewFace

    rows = []
    context = multiprocessing.get_context("spawn")
    for faces in sizes:
        path = workdir / f"g{faces}.db"
        started = time.perf_counter()
        fill(path, faces)
        filled = time.perf_counter() - started
        writer = LocalStore(path, embedder=EMBEDDER, dim=DIM)
        probe = unit(np.random.default_rng(2), 1)
        writer.search(probe, 5)
        ours, theirs = context.Pipe()
        other = context.Process(target=reader, args=(str(path), theirs))
        other.start()
        assert ours.recv() == "ready"
        write_s, own_s, other_s = [], [], []
        new = unit(np.random.default_rng(3), writes)
        for i in range(writes):
            start = time.perf_counter()
            writer.add_faces(f"new-{i}", [NewFace(new[i], sha256=f"new-{i}")], create=True)
            write_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            writer.search(probe, 5)
            own_s.append(time.perf_counter() - start)
            ours.send("search")
            other_s.append(ours.recv())
        ours.send("stop")
        other.join(timeout=60)
        writer.close()
        rows.append({
            "faces": faces,
            "fill_s": filled,
            "write_ms": 1000 * statistics.median(write_s),
            "write_max_ms": 1000 * max(write_s),
            "own_search_ms": 1000 * statistics.median(own_s),
            "other_search_ms": 1000 * statistics.median(other_s),
            "other_search_max_ms": 1000 * max(other_s),
        })
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def run_version(tree: Path, sizes: list[int], writes: int) -> list[dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory() as workdir:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--measure", "--sizes", ",".join(map(str, sizes)),
             "--writes", str(writes), "--workdir", workdir],
            env=env, cwd=workdir, check=True, stdout=subprocess.PIPE, text=True,
        )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--before", default=BEFORE, help="git revision of the store to compare with")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.measure:
        print(json.dumps(measure(sizes, args.writes, Path(args.workdir))))
        return
    with tempfile.TemporaryDirectory() as old:
        archive = Path(old) / "before.tar"
        subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), args.before, "faceshot"], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(old, filter="data")
        print(f"before: {args.before}; after: this checkout. {args.writes} writes per size; medians.", flush=True)
        before = run_version(Path(old), sizes, args.writes)
    after = run_version(REPO, sizes, args.writes)
    header = (f"{'faces':>8} | {'write ms':>17} | {'own next search ms':>18} | "
              f"{'other process next search ms':>28} | other-search speed-up")
    print(header)
    print("-" * len(header))
    for b, a in zip(before, after):
        print(
            f"{a['faces']:>8} | {b['write_ms']:7.1f} → {a['write_ms']:6.1f} | "
            f"{b['own_search_ms']:7.1f} → {a['own_search_ms']:7.1f} | "
            f"{b['other_search_ms']:12.1f} → {a['other_search_ms']:8.1f} (max {a['other_search_max_ms']:.1f}) | "
            f"{b['other_search_ms'] / a['other_search_ms']:.1f}x (writes {b['write_ms'] / a['write_ms']:.1f}x)"
        )


if __name__ == "__main__":
    main()
