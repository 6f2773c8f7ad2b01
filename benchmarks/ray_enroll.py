"""Folder enrollment on Ray Data against the local runner: the same LFW photos, 1 and 2 Ray nodes.

    python benchmarks/ray_enroll.py                 # 100 and 400 LFW photos: local, Ray 1 node, Ray 2 nodes
    python benchmarks/ray_enroll.py --photos 40 --runs local ray2

Each run is ``faceshot enroll-dir FOLDER --json`` into a new gallery, in a child process, timed from
start to exit (so the Ray runs include connecting and the actors loading their models; the cluster
itself is started beforehand and its start time printed apart). ``local`` uses the default worker
processes (one per core); ``ray1`` a 1-node cluster with 2 CPUs (2 actors); ``ray2`` a 2-node cluster
with 1 CPU each (1 actor per node). Every node is on this machine and they share its cores: the
figures measure what Ray costs, not what more machines would bring.

With two sizes, the marginal rate, (N2 - N1) / (t2 - t1), separates what each further photo costs
from the fixed cost of a run (connecting, starting actors, loading models).

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


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def run(name: str, folder: Path, work: Path, cluster=None) -> dict:
    db = work / f"{name}.db"
    command = [sys.executable, "-m", "faceshot", "enroll-dir", str(folder), "--db", str(db), "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if cluster is not None:
        command += ["--runner", "ray", "--address", cluster.address]
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
    if process.returncode not in (0, 1):  # 1: some photos failed, which every runner reports alike
        raise SystemExit(f"{name}: enroll-dir exited with {process.returncode}")
    summary = json.loads(out)
    return {
        "run": name,
        "photos": summary["enrolled"] + summary["skipped"] + len(summary["failed"]),
        "enrolled": summary["enrolled"],
        "failed": len(summary["failed"]),
        "seconds": round(seconds, 1),
        "photos_per_s": round((summary["enrolled"] + len(summary["failed"])) / seconds, 2),
        "peak_pss_mib": round(peak / 1024),
        "_faces": sorted((f["source"], f["sha256"], json.dumps(f["box"])) for p in summary["people"] for f in p["added"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--runs", nargs="+", default=["local", "ray1", "ray2"], choices=["local", "ray1", "ray2"])
    args = parser.parse_args()
    namespace.reexec()
    from faceshot.sandbox.ray import LocalCluster

    with tempfile.TemporaryDirectory(prefix="ray-enroll-") as temp:
        work = Path(temp)
        folders = {}
        for size in sorted(set(args.photos)):
            folders[size] = work / f"people{size}"
            folders[size].mkdir()
            photo_folder(folders[size], size)
        print(json.dumps({"photos": sorted(folders), "cores": len(os.sched_getaffinity(0)),
                          "load_average": [round(x, 2) for x in os.getloadavg()]}), flush=True)
        reference: dict[int, list] = {}
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
                timed = []
                for size, folder in sorted(folders.items()):
                    result = run(f"{name}-{size}", folder, work, cluster)
                    faces = result.pop("_faces")
                    reference.setdefault(size, faces)
                    result["same_faces_as_first_runner"] = faces == reference[size]
                    print(json.dumps(result), flush=True)
                    timed.append((result["photos"], result["seconds"]))
                if len(timed) >= 2:
                    (n1, t1), (n2, t2) = timed[0], timed[-1]
                    print(json.dumps({"run": name, "marginal_photos_per_s": round((n2 - n1) / (t2 - t1), 2),
                                      "fixed_s": round(t1 - n1 * (t2 - t1) / (n2 - n1), 1)}), flush=True)
            finally:
                if cluster is not None:
                    cluster.stop()


if __name__ == "__main__":
    main()
