"""Load on `faceshot serve`: concurrent clients on loopback for a fixed time, identify and enroll mixed.

A gallery of ``--people`` synthetic people (one vector each from the generator fitted to dlib's
LFW vectors, in the default embedder's vector space, added in one transaction) is served with 1 and then 2 workers (``--workers``). Each
of ``--clients`` threads sends requests on its own connection for ``--seconds`` (and at most
``--max-requests`` each): every ``--enroll-every``-th request enrolls a new person from a real photo
(``POST /v1/people``, force), the others identify a real photo (``POST /v1/identify``). Limits are
set above the load, so any non-2xx answer is an error. Prints one JSON line per worker count:
throughput, p50/p95/p99 latency per kind, errors.

    python benchmarks/serve_load.py                                  # 10k people, 4 clients, 20 s, 1 and 2 workers
    python benchmarks/serve_load.py --people 1000 --seconds 5 --workers 1

Loopback only: the server binds 127.0.0.1 and every request goes there.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PHOTOS = Path(os.environ.get("FACESHOT_TEST_IMAGES", REPO / ".cache" / "test_images"))
PROBES = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")


def build_gallery(path: Path, people: int) -> str:
    """A gallery of ``people`` synthetic people and an admin key (returned)."""
    from faceshot.gallery import Gallery
    from faceshot.gallery.store import NewFace, PersonRecord
    from faceshot.keys import KeyStore

    with KeyStore(path, create=True) as keys:
        token, _ = keys.create("admin", name="load test")
    with Gallery(path, create=False) as gallery:
        # People drawn from the generator fitted to dlib's LFW vectors (faceshot.evaluate.synthetic),
        # so the index and the decisions see realistic scores, not uniform random vectors.
        from faceshot.evaluate.synthetic import lfw_dlib_model

        _, enrolled = lfw_dlib_model().gallery(people, faces_per_person=1, seed=0)
        vectors = enrolled.vectors.astype(np.float32)
        assert vectors.shape[1] == gallery.store.dim
        gallery.add_embeddings_batch(
            PersonRecord(f"synthetic {i:06d}", {}, (), None, (NewFace(vectors[i], sha256=f"synthetic-{i}"),))
            for i in range(people)
        )
    return token


def serve(path: Path, workers: int) -> tuple[subprocess.Popen, str]:
    from faceshot.server.launch import start_server

    try:
        return start_server(path, workers=workers, env={"PYTHONPATH": str(REPO), "FACESHOT_MAX_IN_FLIGHT": "10000"},
                            timeout=180)
    except RuntimeError as exc:
        raise SystemExit(f"the server did not start: {exc}") from None


def load(url: str, token: str, *, clients: int, seconds: float, max_requests: int, enroll_every: int, tag: str) -> dict:
    import httpx

    photos = {name: (PHOTOS / name).read_bytes() for name in PROBES}
    results: list[tuple[str, int, float]] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(number: int) -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": token}, timeout=120) as session:
            for i in range(max_requests):
                if time.monotonic() >= end:
                    return
                name = PROBES[(number + i) % len(PROBES)]
                started = time.perf_counter()
                if i % enroll_every == enroll_every - 1:
                    kind = "enroll"
                    response = session.post("/v1/people", data={"name": f"load {tag} {number}-{i}", "force": "true"},
                                            files={"images": (name, photos[name], "image/jpeg")})
                else:
                    kind = "identify"
                    response = session.post("/v1/identify", files={"image": (name, photos[name], "image/jpeg")})
                elapsed = time.perf_counter() - started
                with lock:
                    results.append((kind, response.status_code, elapsed))

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    report: dict = {"requests": len(results), "seconds": round(wall, 1),
                    "per_second": round(len(results) / wall, 2),
                    "errors": sum(1 for _, status, _ in results if not 200 <= status < 300)}
    for kind in ("identify", "enroll"):
        times = np.array([t for k, _, t in results if k == kind]) * 1000
        if len(times):
            report[kind] = {"n": int(len(times)), **{f"p{q}_ms": round(float(np.percentile(times, q)), 1) for q in (50, 95, 99)}}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-requests", type=int, default=2000, help="per client: a bound besides the time")
    parser.add_argument("--enroll-every", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if not (PHOTOS / PROBES[0]).is_file():
        raise SystemExit(f"{PHOTOS}: no test photos; run `make test-images`")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "load.db"
        started = time.perf_counter()
        token = build_gallery(path, args.people)
        print(json.dumps({"gallery_people": args.people, "built_s": round(time.perf_counter() - started, 1),
                          "cores": len(os.sched_getaffinity(0))}), flush=True)
        for workers in args.workers:
            process, url = serve(path, workers)
            try:
                report = load(url, token, clients=args.clients, seconds=args.seconds,
                              max_requests=args.max_requests, enroll_every=args.enroll_every, tag=f"w{workers}")
            finally:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            print(json.dumps({"workers": workers, "clients": args.clients, **report}), flush=True)


if __name__ == "__main__":
    main()
