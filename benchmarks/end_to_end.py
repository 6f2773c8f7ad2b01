"""End to end on folders of photos: faceshot against face_recognition, same images, same run.

    python benchmarks/end_to_end.py [--lfw 500] [--workers 2] [--repeats 1] [--json OUT]

Two sets: ``lfw`` (a fixed random sample of LFW photos, 250 × 250, one face each mostly) and
``scenes`` (the 21 group photos of ``scenes`` plus the 15 photos of ``face_recognition_examples``:
several faces, 360 px to 2,280 px). For each set and system, in a fresh process:

- ``face_recognition``: ``face_recognition.face_encodings(face_recognition.load_image_file(path))``
  in a ``multiprocessing.Pool`` of ``--workers`` processes (how its own CLI uses several cores);
- ``faceshot``: :func:`faceshot.bulk.represent_files` with its defaults (worker processes detect,
  this process embeds; the default, mirror-averaged ``dlib-resnet-onnx`` embedder: twice the
  network work of face_recognition);
- ``faceshot-threads``: the same with ``backend="threads"``;
- ``faceshot-single``: the default pipeline with ``dlib-resnet-onnx-single`` (one pass per face,
  the same work as face_recognition).

Reported: images/s, faces/s, the ratio to face_recognition, and peak memory: the largest sum, over
the process and its children, of the proportional set size (PSS: pages shared by forked children
are divided among them, so a pool is not counted twice for the model it inherited), sampled every
50 ms. Models are loaded before the clock starts (one warm-up image) on both sides.

Then the time per stage (one thread, one process, no overlap), for faceshot and for the calls
face_recognition makes: decode, detect (boxes), landmarks, chip (faceshot's alignment; dlib cuts
the chip inside ``compute_face_descriptor``), embed.

Needs ``make bench-deps`` (face_recognition, installed without its dependencies) and
``../shared/datasets``. The machine's load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FACESHOT_DATASETS", ROOT.parent / "shared" / "datasets"))
SYSTEMS = ("face_recognition", "faceshot", "faceshot-threads", "faceshot-single")
PEER = "face_recognition"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def image_sets(lfw_count: int, seed: int = 0) -> dict[str, list[str]]:
    lfw = sorted(str(p) for p in (DATASETS / "lfw" / "images").glob("*/*.jpg"))
    sample = sorted(random.Random(seed).sample(lfw, lfw_count))
    scenes = sorted(
        str(p)
        for folder in ("scenes", "face_recognition_examples")
        for p in (DATASETS / folder).rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
    )
    return {"lfw": sample, "scenes": scenes}


# --- one system, in its own process ------------------------------------------------------------


def run_face_recognition(paths: list[str], workers: int) -> tuple[float, int]:
    import multiprocessing

    import face_recognition  # loads its models at import, before the pool forks

    _face_recognition_faces(paths[0])
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        faces = sum(pool.imap(_face_recognition_faces, paths))
    return time.perf_counter() - start, faces


def _face_recognition_faces(path: str) -> int:
    import face_recognition

    return len(face_recognition.face_encodings(face_recognition.load_image_file(path)))


def run_faceshot(paths: list[str], workers: int, backend: str, embedder: str) -> tuple[float, int]:
    from faceshot.bulk import represent_files
    from faceshot.embed import create_embedder

    create_embedder(embedder).load()
    list(represent_files(paths[:1], embedder=embedder, workers=1))
    start = time.perf_counter()
    faces = 0
    for result in represent_files(paths, embedder=embedder, workers=workers, backend=backend):  # type: ignore[arg-type]
        if not result.ok:
            raise SystemExit(f"{result.path}: {result.error}")
        faces += len(result.faces)
    return time.perf_counter() - start, faces


def child(system: str, list_file: str, workers: int) -> None:
    paths = Path(list_file).read_text().split("\n")
    if system == PEER:
        seconds, faces = run_face_recognition(paths, workers)
    else:
        backend = "threads" if system == "faceshot-threads" else "processes"
        embedder = "dlib-resnet-onnx-single" if system == "faceshot-single" else "dlib-resnet-onnx"
        seconds, faces = run_faceshot(paths, workers, backend, embedder)
    print(json.dumps({"seconds": seconds, "faces": faces}))


# --- memory of a process tree ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kib(pid: int) -> int:
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += _pss_kib(current)
        todo += _children(current)
    return total


def measure(system: str, paths: list[str], workers: int) -> dict[str, Any]:
    list_file = ROOT / ".cache" / f"end_to_end_{os.getpid()}.txt"
    list_file.parent.mkdir(exist_ok=True)
    list_file.write_text("\n".join(paths))
    command = [sys.executable, __file__, "--child", system, "--list", str(list_file), "--workers", str(workers)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, tree_pss_kib(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    done.set()
    sampler.join()
    list_file.unlink()
    if process.returncode != 0:
        raise SystemExit(f"{system} failed with exit code {process.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    seconds = result["seconds"]
    return {
        "system": system,
        "images": len(paths),
        "faces": result["faces"],
        "seconds": round(seconds, 2),
        "images_per_s": round(len(paths) / seconds, 2),
        "faces_per_s": round(result["faces"] / seconds, 2),
        "peak_pss_mib": round(peak / 1024),
    }


# --- time per stage ----------------------------------------------------------------------------


def stages(paths: list[str]) -> dict[str, dict[str, float]]:
    """Milliseconds per image spent in each stage, one thread, for both systems."""
    import face_recognition
    import face_recognition.api as fr_api
    import numpy as np

    from faceshot.embed import DEFAULT_EMBEDDER, create_embedder
    from faceshot.engine import Engine
    from faceshot.io import load_image
    from faceshot.results import Face

    engine = Engine(embedder=create_embedder(DEFAULT_EMBEDDER, threads=1))
    engine.represent(paths[0])  # load every model before the clock starts
    ours = dict.fromkeys(("decode", "detect", "landmarks", "chip", "embed"), 0.0)
    theirs = dict.fromkeys(("decode", "detect", "landmarks", "embed"), 0.0)

    def timed(table: dict[str, float], stage: str, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = call()
        table[stage] += time.perf_counter() - start
        return value

    for path in paths:
        image = timed(ours, "decode", lambda: load_image(path))
        member, found = timed(ours, "detect", lambda: first_finding(engine.detector, image))
        points = timed(ours, "landmarks", lambda: [
            member.landmarks(image, box) for box, _ in found  # type: ignore[attr-defined]
        ])
        faces = [Face(box=box, score=score, landmarks=p) for (box, score), p in zip(found, points)]
        chips = timed(ours, "chip", lambda: engine.aligner.align(image, faces))
        timed(ours, "embed", lambda: engine.embedder.embed(chips))

        picture = timed(theirs, "decode", lambda: face_recognition.load_image_file(path))
        boxes = timed(theirs, "detect", lambda: fr_api._raw_face_locations(picture, 1, "hog"))
        shapes = timed(theirs, "landmarks", lambda: [fr_api.pose_predictor_5_point(picture, box) for box in boxes])
        timed(theirs, "embed", lambda: [
            np.array(fr_api.face_encoder.compute_face_descriptor(picture, shape, 1)) for shape in shapes
        ])
    return {
        name: {stage: round(seconds / len(paths) * 1000, 1) for stage, seconds in table.items()}
        for name, table in (("faceshot", ours), (PEER, theirs))
    }


def first_finding(detector: Any, image: Any) -> tuple[Any, list]:
    """The boxes of a dlib detector, or of the first member of a fallback chain (``hog>cnn-onnx``,
    the default) that finds a face, and that detector (which then places the landmarks)."""
    for member in getattr(detector, "members", (detector,)):
        found = member.locate(image)
        if found:
            return member, found
    return member, []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=int, default=500, help="LFW photos in the sample")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--stages", type=int, default=100, help="images of each set timed stage by stage")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--list", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.list, args.workers)
        return
    print(f"load average at the start: {os.getloadavg()[0]:.2f}; workers: {args.workers}")
    report: dict[str, Any] = {"workers": args.workers, "sets": {}, "stages": {}}
    for name, paths in image_sets(args.lfw).items():
        rows = [measure(system, paths, args.workers) for system in args.systems]
        peer = next((row for row in rows if row["system"] == PEER), None)
        print(f"\n{name}: {len(paths)} images")
        print(f"{'system':<20}{'faces':>7}{'seconds':>9}{'images/s':>10}{'faces/s':>9}{'ratio':>7}{'peak MiB':>10}")
        for row in rows:
            ratio = row["images_per_s"] / peer["images_per_s"] if peer else float("nan")
            row["ratio"] = round(ratio, 2)
            print(
                f"{row['system']:<20}{row['faces']:>7}{row['seconds']:>9.1f}{row['images_per_s']:>10.1f}"
                f"{row['faces_per_s']:>9.1f}{ratio:>6.2f}x{row['peak_pss_mib']:>10}"
            )
        report["sets"][name] = rows
        if args.stages:
            table = stages(paths[: args.stages])
            report["stages"][name] = table
            print(f"time per image and stage, ms, one thread ({min(args.stages, len(paths))} images):")
            for system, times in table.items():
                cells = "  ".join(f"{stage} {ms:.1f}" for stage, ms in times.items())
                print(f"  {system:<18}{cells}  total {sum(times.values()):.1f}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
