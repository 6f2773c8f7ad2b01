"""Face-search policies and detectors: recall and precision, speed at four photo sizes, photos without a face, same run.

    python benchmarks/detect_policy.py [--lfw 300] [--models .cache/models] [--yunet FILE] [--json OUT]

For each detector text (the engine grammar: plain detectors, ``min_face``, ``turns``, a fallback
chain), one thread each, taking turns photo by photo so the machine's load touches all alike:

- ms per photo at 250 × 250 (LFW), 640 × 480, 1920 × 1080 (a scene photo resized) and a 5000-px
  panorama (six LFW portraits, faces of about 100 px, spread over a 5000 × 833 strip) — the median of
  ``--repeat`` runs, landmarks included (what a command pays);
- faces found in the panorama (six are there);
- recall and precision on the 43 faces dlib annotated in 9 ``scenes`` photos, a face matched by a
  detection whose box overlaps it with IoU ≥ 0.5 (PASCAL VOC's rule) and, more leniently, ≥ 0.3
  (boxes of other shapes than dlib's annotation still count); precision: detections in those photos
  matching an annotated face; ms per scene photo (one search each, landmarks included);
- photos without a face among the in-the-wild sets (``face_recognition_examples``,
  ``deepface_testset``) and a fixed random sample of LFW.

MTCNN and YuNet need a user step (``faceshot models fetch mtcnn``, YuNet's file), so they are
compared but cannot be the default.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from detect_speed import DATASETS, SCENE_ANNOTATIONS, photos, print_rows, scene_truth  # this folder: run as a script

from faceshot.detect import Detector
from faceshot.evaluate.detection import annotated_folder_detection
from faceshot.io import load_image
from faceshot.spec import build_detector


def sized(path: Path, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB").resize((width, height), Image.BICUBIC))


def panorama(lfw: list[Path]) -> np.ndarray:
    """Six LFW portraits (faces of about 100 px) spread over a 5000 × 833 grey strip."""
    canvas = np.full((833, 5000, 3), 128, np.uint8)
    for i, path in enumerate(lfw[:6]):
        canvas[290:540, 150 + i * 800 : 400 + i * 800] = np.asarray(Image.open(path).convert("RGB"))
    return canvas


def timed(detector: Detector, image: np.ndarray, repeat: int) -> tuple[float, int]:
    times, found = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        found = len(detector.detect(image))
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=int, default=300, help="LFW photos in the no-face sample")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per photo size (median)")
    parser.add_argument("--models", type=Path, help="MTCNN's graphs (`faceshot models fetch mtcnn --cache-dir`)")
    parser.add_argument("--yunet", type=Path, help="YuNet's ONNX file")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--detectors", help="comma-separated detector texts instead of the default list (mtcnn, yunet: by their options above)")
    parser.add_argument("--no-speed", action="store_true", help="leave out the four photo sizes (the slowest part)")
    parser.add_argument("--scenes-only", action="store_true", help="only recall and precision on the annotated scenes")
    args = parser.parse_args()

    texts = ["hog", "hog:min_face=40", "hog:turns=true", "hog>cnn-onnx", "cnn-onnx"]
    if args.detectors:
        texts = args.detectors.split(",")
    if args.models:
        texts.append(f"mtcnn:cache_dir={args.models}")
    if args.yunet:
        texts.append(f"yunet:model={args.yunet}")
    detectors = {text.split(":cache_dir")[0].split(":model=")[0]: build_detector(text) for text in texts}

    lfw_all = sorted((DATASETS / "lfw" / "images").rglob("*.jpg"))
    sample = random.Random(0).sample(lfw_all, args.lfw)
    scene = DATASETS / "scenes" / "dlib_2008_002079.jpg"
    sizes = {
        "250×250": np.asarray(Image.open(sample[0]).convert("RGB")),
        "640×480": sized(scene, 640, 480),
        "1920×1080": sized(scene, 1920, 1080),
        "5000×833": panorama(sample[1:]),
    }
    wild = photos(DATASETS / "face_recognition_examples") + photos(DATASETS / "deepface_testset")
    rows = {name: {"detector": name} for name in detectors}
    print(f"load average at the start: {os.getloadavg()[0]:.2f}", flush=True)
    scene_photos = len(scene_truth())
    for name, detector in detectors.items():
        detector.detect(sizes["250×250"])  # models loaded (and cnn-onnx's network converted) before timing
        start = time.perf_counter()
        strict, lenient = annotated_folder_detection(
            detector.detect, DATASETS / "scenes", SCENE_ANNOTATIONS, prefix="dlib_", min_iou=(0.5, 0.3)
        )
        rows[name]["ms scene photo"] = (time.perf_counter() - start) * 1000 / scene_photos
        rows[name].update({"recall@0.5": strict.recall, "precision@0.5": strict.precision,
                           "recall@0.3": lenient.recall, "precision@0.3": lenient.precision,
                           "scene detections": strict.detections})
        print(f"{name}: scenes recall {strict.found}/{strict.annotated} (IoU 0.5), {lenient.found} (IoU 0.3); "
              f"{strict.detections} detections, {strict.extra} / {lenient.extra} unmatched", flush=True)
    if args.scenes_only:
        args.no_speed = True
    for label, image in ({} if args.no_speed else sizes).items():
        for name, detector in detectors.items():
            ms, found = timed(detector, image, args.repeat)
            rows[name][f"ms {label}"] = ms
            if label.startswith("5000"):
                rows[name]["panorama faces"] = found
    for key, files in () if args.scenes_only else (("no face, in the wild", wild), ("no face, LFW", sample)):
        for name in detectors:
            rows[name][key] = 0
        for path in files:
            image = load_image(path)
            for name, detector in detectors.items():
                rows[name][key] += not detector.detect(image)
    print(f"in-the-wild photos: {len(wild)}; LFW sample: {len(sample)}; panorama: six faces")
    columns = [("detector", "detector", "<18")]
    columns += [(key, key, ">14.3f") for key in ("recall@0.5", "precision@0.5", "recall@0.3", "precision@0.3")]
    columns += [("ms scene photo", "ms scene", ">10.1f")]
    if not args.no_speed:
        columns += [(f"ms {s}", f"ms {s}", ">14.1f") for s in sizes] + [("panorama faces", "pano faces", ">11d")]
    if not args.scenes_only:
        columns += [("no face, in the wild", "no face wild", ">13d"), ("no face, LFW", "no face LFW", ">12d")]
    print_rows(list(rows.values()), columns, args.json)


if __name__ == "__main__":
    main()
