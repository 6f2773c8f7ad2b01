"""MTCNN against dlib's detectors: recall, precision, speed and LFW photos without a face, same run.

    python benchmarks/detect_mtcnn.py [--lfw 300] [--models .cache/models] [--yunet FILE] [--json OUT]

Needs MTCNN's graphs (``faceshot models fetch mtcnn``, or ``make test-models`` for ``.cache/models``).
Detectors compared, each with its defaults unless named: ``hog``, ``cnn-onnx`` and ``mtcnn``
(min_face 20, thresholds 0.6/0.7/0.7 as facenet-pytorch), plus ``mtcnn`` looking for faces of at
least 40 px, and requiring an O-Net confidence of 0.9 and 0.99 (counted from the same run: the
faces of the default search above that confidence), to show what the confidence threshold trades. ``--yunet FILE`` adds YuNet (OpenCV Zoo's ONNX file),
searched once with a confidence floor of 0.3 and counted at several thresholds, and prints the
confidences of its faces (the surest face of each LFW photo, and every detection in non-face
photos) to show where its useful range lies.

Measured, one thread each, the detectors taking turns on every photo so that a change in the
machine's load touches all of them alike; boxes only (the dlib landmarks every detector then places
cost the same for all):

- recall on the 43 faces annotated by dlib in the ``scenes`` PASCAL VOC photos (IoU ≥ 0.3, the
  lenient match of :mod:`faceshot.evaluate.detection`), the detections there that match no
  annotated face, and precision (the share of detections that match one);
- faces found in the 21 ``scenes`` photos and ms per photo;
- LFW: photos of a fixed random sample in which no face is found, and ms per photo;
- ``nonfaces``: photos with a detection (false alarms).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np

from detect_speed import DATASETS, photos, print_rows, scene_truth  # this folder: run as a script

from faceshot.detect import create_detector
from faceshot.evaluate.detection import detection_recall
from faceshot.io import load_image
from faceshot.results import Box

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=int, default=300, help="LFW photos in the sample")
    parser.add_argument("--models", type=Path, default=None,
                        help="where `faceshot models fetch mtcnn --cache-dir` wrote MTCNN (default: the cache)")
    parser.add_argument("--yunet", type=Path, help="YuNet's ONNX file: add the yunet detector")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    mtcnn = {"cache_dir": str(args.models)} if args.models else {}
    hog, cnn = create_detector("hog"), create_detector("cnn-onnx")
    mt20, mt40 = create_detector("mtcnn", **mtcnn), create_detector("mtcnn", min_face=40, **mtcnn)
    # label -> a function giving (box, confidence) pairs
    searches: dict[str, Callable[..., list[tuple[Box, float]]]] = {
        "hog": hog.locate,  # type: ignore[attr-defined]
        "cnn-onnx": cnn.locate,  # type: ignore[attr-defined]
        "mtcnn": lambda image: [(f.box, f.confidence) for f in mt20.locate(image)],  # type: ignore[attr-defined]
        "mtcnn:min_face=40": lambda image: [(f.box, f.confidence) for f in mt40.locate(image)],  # type: ignore[attr-defined]
    }
    derived = {"mtcnn:confidence=0.9": ("mtcnn", 0.9), "mtcnn:confidence=0.99": ("mtcnn", 0.99)}
    if args.yunet:
        yunet = create_detector("yunet", model=str(args.yunet), confidence=0.3)
        searches["yunet:confidence=0.3"] = lambda image: [(f.box, f.confidence) for f in yunet.locate(image)]  # type: ignore[attr-defined]
        for floor in (0.5, 0.6, 0.7, 0.8, 0.9):
            derived[f"yunet:confidence={floor}"] = ("yunet:confidence=0.3", floor)

    truth = scene_truth()
    scenes = photos(DATASETS / "scenes")
    lfw = sorted(random.Random(0).sample(sorted((DATASETS / "lfw" / "images").glob("*/*.jpg")), args.lfw))
    nonfaces = photos(DATASETS / "nonfaces")
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")

    found: dict[str, dict[str, list[tuple[Box, float]]]] = {label: {} for label in searches}
    seconds: dict[str, dict[str, float]] = {label: {"scenes": 0.0, "lfw": 0.0, "nonfaces": 0.0} for label in searches}
    for group, paths in (("scenes", scenes), ("lfw", lfw), ("nonfaces", nonfaces)):
        for path in paths:
            image = load_image(path)
            for label, search in searches.items():
                start = time.perf_counter()
                found[label][str(path)] = search(image)
                seconds[label][group] += time.perf_counter() - start
    for label, (source, floor) in derived.items():
        found[label] = {p: [(b, c) for b, c in faces if c >= floor] for p, faces in found[source].items()}
        seconds[label] = seconds[source]

    rows = []
    confidences: dict[str, list[float]] = {}
    for label in found:
        boxes = {p: [b for b, _ in faces] for p, faces in found[label].items()}
        recall = detection_recall(truth, lambda name: boxes[str(DATASETS / "scenes" / name)])
        detections = sum(len(boxes[str(DATASETS / "scenes" / name)]) for name in truth)
        rows.append({
            "detector": label,
            "recall": round(recall.recall, 3),
            "annotated_found": recall.found,
            "extra": recall.extra,
            "precision": round((detections - recall.extra) / detections, 3) if detections else float("nan"),
            "scene_faces": sum(len(boxes[str(p)]) for p in scenes),
            "scene_ms": round(seconds[label]["scenes"] / len(scenes) * 1000, 1),
            "lfw_no_face": sum(not boxes[str(p)] for p in lfw),
            "lfw_ms": round(seconds[label]["lfw"] / len(lfw) * 1000, 1),
            "nonface_alarms": sum(bool(boxes[str(p)]) for p in nonfaces),
        })
        confidences[label] = [c for p in nonfaces for _, c in found[label][str(p)]]
    print(f"\nannotated faces: {sum(map(len, truth.values()))} in {len(truth)} photos; scene photos: {len(scenes)}; "
          f"LFW sample: {len(lfw)}; non-face photos: {len(nonfaces)}")
    print("confidence=0.9/0.99 rows: the default mtcnn search's faces at or above that O-Net confidence (same time)")
    print_rows(rows, [
        ("detector", "detector", "<24"), ("recall", "recall", ">8.3f"), ("extra", "extra", ">6"),
        ("precision", "precision", ">10.3f"), ("scene_faces", "faces", ">7"), ("scene_ms", "ms/scene", ">10.1f"),
        ("lfw_no_face", "LFW no face", ">13"), ("lfw_ms", "ms/LFW", ">8.1f"), ("nonface_alarms", "alarms", ">8"),
    ], args.json)
    for label in ("mtcnn", "yunet:confidence=0.3"):
        if label not in found:
            continue
        alarms = sorted(confidences[label], reverse=True)
        print(f"{label}: confidences of the detections in non-face photos (highest first): {[round(c, 3) for c in alarms[:10]]}")
        surest = np.array([max((c for _, c in found[label][str(p)]), default=0.0) for p in lfw])
        print(f"{label}: the surest face's confidence per LFW photo: percentiles 1/5/50/95: "
              f"{np.round(np.percentile(surest, [1, 5, 50, 95]), 3).tolist()}, lowest {np.round(np.sort(surest)[:5], 3).tolist()}")
    for path in scenes:
        print(f"{path.name:<40}" + "".join(f"{len(found[label][str(path)]):>5}" for label in found))
    print("(faces per scene photo, columns in the order of the table)")


if __name__ == "__main__":
    main()
