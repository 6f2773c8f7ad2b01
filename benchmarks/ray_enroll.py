"""Folder enrollment on Ray Data against the local runner: the same LFW photos, 1 and 2 Ray nodes.

    python benchmarks/ray_enroll.py                 # 400 LFW photos: local, Ray 1 node, Ray 2 nodes
    python benchmarks/ray_enroll.py --photos 40 --runs local ray2

Each run is ``Gallery.enroll_dir`` (what ``faceshot enroll-dir`` runs) into a new gallery, in a child
process, timed from start to exit (so the Ray runs include connecting and the actors loading their
models; the cluster itself is started beforehand and its start time printed apart). The child also
notes when each photo's result reached the gallery: ``first_result_s`` is the wait for the first
(connecting, starting actors, loading models), ``steady_photos_per_s`` the rate over the last 90%
of the photos, once every worker is running. ``local`` uses the default worker
processes (one per core); ``ray1`` a 1-node cluster with 2 CPUs (2 actors); ``ray2`` a 2-node cluster
with 1 CPU each (1 actor per node). Every node is on this machine and they share its cores: the
figures measure what Ray costs, not what more machines would bring.

The gallery process's own share (walking, hashing, the skip, the gate, the records) is timed
alone by replaying results computed beforehand: that is the ceiling of one writer however many
nodes compute.

Peak memory: the largest sum, sampled every 0.1 s, of the proportional set size (PSS) of the
driver's process tree and, for the Ray runs, of every process of the cluster (raylets, GCS,
agents, actors). Prints one JSON line per run, and checks that every run enrolled the same faces.

Runs inside a loopback-only network namespace (re-executing itself there: Ray probes a public
address to choose its node IP), as root.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from end_to_end import _children, _pss_kib  # noqa: E402  (this folder: run as a script)
from faceshot.sandbox import namespace  # noqa: E402

DATASETS = Path(os.environ.get("FACESHOT_DATASETS", REPO.parent / "shared" / "datasets"))


def photo_folder(root: Path, photos: int) -> int:
    """ROOT/person/photo.jpg links to the first ``photos`` LFW photos (people in name order)."""
    lfw = DATASETS / "lfw" / "images"
    if not lfw.is_dir():
        raise SystemExit(f"{lfw}: the LFW images are missing (../shared/datasets)")
    count = 0
    for person in sorted(lfw.iterdir()):
        for photo in sorted(person.glob("*.jpg")):
            if count == photos:
                return count
            (root / person.name).mkdir(exist_ok=True)
            (root / person.name / photo.name).symlink_to(photo)
            count += 1
    return count


def _tree(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += _children(current)
    return found


def child(folder: str, db: str, address: str | None) -> None:
    """One enrollment in this process; prints its summary and when each photo's result arrived."""
    from contextlib import ExitStack

    from faceshot.gallery import Gallery

    arrived: list[float] = []
    with ExitStack() as stack:
        gallery = stack.enter_context(Gallery(db))
        runner = None
        if address:
            from faceshot.bulk_ray import RayRunner

            runner = stack.enter_context(RayRunner(address))
        started = time.perf_counter()
        summary = gallery.enroll_dir(folder, runner=runner,
                                     progress=lambda step: arrived.append(time.perf_counter() - started))
    print(json.dumps({"summary": summary.to_dict(), "arrived": arrived}))


def run(name: str, folder: Path, work: Path, cluster=None) -> dict:
    db = work / f"{name}.db"
    command = [sys.executable, __file__, "--child", str(folder), str(db)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if cluster is not None:
        command.append(cluster.address)
        env.update(cluster.env)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.1):
            pids = _tree(process.pid) | (cluster.processes() if cluster is not None else set())
            peak = max(peak, sum(_pss_kib(pid) for pid in pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{name}: the enrollment exited with {process.returncode}")
    report = json.loads(out.strip().splitlines()[-1])
    summary, arrived = report["summary"], sorted(report["arrived"])
    skip = len(arrived) // 10
    return {
        "run": name,
        "photos": summary["enrolled"] + summary["skipped"] + len(summary["failed"]),
        "enrolled": summary["enrolled"],
        "failed": len(summary["failed"]),
        "seconds": round(seconds, 1),
        "photos_per_s": round(len(arrived) / seconds, 2),
        "first_result_s": round(arrived[0], 1),
        "steady_photos_per_s": round((len(arrived) - 1 - skip) / (arrived[-1] - arrived[skip]), 1),
        "peak_pss_mib": round(peak / 1024),
        "_faces": sorted((f["source"], f["sha256"], json.dumps(f["box"])) for p in summary["people"] for f in p["added"]),
    }


class Replay:
    """A runner that hands back results computed earlier: what is left is the gallery process's share."""

    hashes_while_embedding = False
    reads_urls = False

    def __init__(self, digests: dict, results: dict) -> None:
        self._digests, self._results = digests, results

    def digests(self, sources):
        return [self._digests[source] for source in sources]

    def represent(self, engine, items, *, one_face):
        for index, (source, digest) in enumerate(items):
            yield index, digest, self._results[source]


def driver_share(folder: Path, work: Path) -> dict:
    """The gallery process's work alone (walk, hashing, skip, gate, records), photos already embedded."""
    from faceshot.bulk import LocalRunner
    from faceshot.gallery import Gallery

    with Gallery(work / "replay-source.db") as gallery:
        runner = LocalRunner()
        sources = [str(path) for path in sorted(folder.rglob("*.jpg"))]
        digests = dict(zip(sources, runner.digests(sources)))
        results = {result.path: result
                   for _, _, result in runner.represent(gallery.engine, [(s, digests[s]) for s in sources], one_face="largest")}
    with Gallery(work / "replay.db") as gallery:
        started = time.perf_counter()
        summary = gallery.enroll_dir(folder, runner=Replay(digests, results))
        seconds = time.perf_counter() - started
    photos = summary.enrolled + len(summary.failed)
    return {"run": "gallery process only (results replayed)", "photos": photos, "enrolled": summary.enrolled,
            "seconds": round(seconds, 2), "photos_per_s": round(photos / seconds, 1),
            "ms_per_photo": round(1000 * seconds / photos, 2)}


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--runs", nargs="+", default=["local", "ray1", "ray2"], choices=["local", "ray1", "ray2"])
    args = parser.parse_args()
    namespace.reexec()
    from faceshot.sandbox.ray import LocalCluster

    with tempfile.TemporaryDirectory(prefix="ray-enroll-") as temp:
        work = Path(temp)
        folder = work / "people"
        folder.mkdir()
        photos = photo_folder(folder, args.photos)
        print(json.dumps({"photos": photos, "cores": len(os.sched_getaffinity(0)),
                          "load_average": [round(x, 2) for x in os.getloadavg()]}), flush=True)
        print(json.dumps(driver_share(folder, work)), flush=True)
        reference = None
        for name in args.runs:
            cluster = None
            if name != "local":
                nodes, cpus = (1, 2) if name == "ray1" else (2, 1)
                started = time.perf_counter()
                cluster = LocalCluster(work / name, nodes=nodes, cpus=cpus, pythonpath=str(REPO))
                cluster.start()
                print(json.dumps({"run": name, "nodes": nodes, "cpus_per_node": cpus,
                                  "cluster_start_s": round(time.perf_counter() - started, 1)}), flush=True)
            try:
                result = run(name, folder, work, cluster)
            finally:
                if cluster is not None:
                    cluster.stop()
            faces = result.pop("_faces")
            reference = reference or faces
            result["same_faces_as_first_run"] = faces == reference
            result["load_average_1min"] = round(os.getloadavg()[0], 2)
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
