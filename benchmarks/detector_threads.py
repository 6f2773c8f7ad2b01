"""Threads sharing dlib's HOG detector: one copy per thread (what faceshot does) against one copy
guarded by a lock, and — in a child process, since it may crash — one copy shared unguarded.

    python benchmarks/detector_threads.py [--threads 3] [--rounds 4]

Prints photos per second for each way (median of 3 alternating runs), and whether the unguarded run crashed or answered wrongly.
The photos are the package-shipped test photos ($FACESHOT_TEST_IMAGES), scaled to 640 px.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from faceshot.detect import create_detector
from faceshot.models import dlib

PHOTOS = Path(os.environ.get("FACESHOT_TEST_IMAGES", Path(__file__).resolve().parents[1] / ".cache" / "test_images"))


def photos() -> list[np.ndarray]:
    found = []
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg", "insightface_t1.jpg"):
        image = Image.open(PHOTOS / name).convert("RGB")
        scale = 640 / max(image.size)
        found.append(np.asarray(image.resize((round(image.width * scale), round(image.height * scale)))))
    return found


def run(detect, images: list[np.ndarray], threads: int, rounds: int) -> tuple[float, list]:
    work = images * rounds
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(detect, work))
    return len(work) / (time.perf_counter() - start), results


def boxes(found) -> list:
    return [[(r.left(), r.top(), r.right(), r.bottom()) for r in rects] for rects in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--unguarded", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    images = photos()
    shared = dlib().get_frontal_face_detector()
    expected = boxes(shared(image, 1) for image in images) * args.rounds
    if args.unguarded:
        _, found = run(lambda image: shared(image, 1), images, args.threads, args.rounds)
        print("unguarded: wrong answers" if boxes(found) != expected else "unguarded: same answers")
        return

    lock = threading.Lock()

    def locked(image: np.ndarray):
        with lock:
            return shared(image, 1)

    local = threading.local()

    def per_thread(image: np.ndarray):
        if not hasattr(local, "detector"):
            local.detector = dlib().get_frontal_face_detector()
        return local.detector(image, 1)

    run(per_thread, images, args.threads, 1)  # every thread loads its copy before the clock starts
    rates: dict[str, list[float]] = {"one copy per thread": [], "one copy, locked": []}
    for _ in range(3):  # alternate, so that a busy moment of the machine does not favour one way
        for label, detect in (("one copy per thread", per_thread), ("one copy, locked", locked)):
            rate, found = run(detect, images, args.threads, args.rounds)
            assert boxes(found) == expected, label
            rates[label].append(rate)
    for label, measured in rates.items():
        print(f"{label:22s} {np.median(measured):6.2f} photos/s (median of 3; {args.threads} threads, "
              f"{len(images) * args.rounds} photos)")
    child = subprocess.run([sys.executable, __file__, "--unguarded", "--threads", str(args.threads), "--rounds",
                            str(args.rounds)], capture_output=True, text=True)
    print(child.stdout.strip() or f"unguarded: the process died (exit code {child.returncode})")
    # faceshot's own detector, for reference: per-thread copies inside (faceshot.models.load).
    detector = create_detector("hog")
    rate, _ = run(detector.detect, images, args.threads, args.rounds)
    print(f"{'faceshot hog (+5 pts)':22s} {rate:6.2f} photos/s")


if __name__ == "__main__":
    main()
