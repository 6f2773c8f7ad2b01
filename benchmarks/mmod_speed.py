"""dlib's CNN (MMOD) face detector run by dlib against its ONNX conversion (``cnn-onnx``): speed, recall, agreement.

    python benchmarks/mmod_speed.py [--threads 1 2] [--examples] [--json OUT]

On the ``scenes`` photos (and, with ``--examples``, the ``face_recognition_examples``), with the
detectors' default scaling (photos of at most 1,000 px doubled, larger ones searched at up to
2,000 px), the detectors taking turns on every photo so that a change in the machine's load touches
them alike:

- ms per photo, and the ratio to dlib's;
- recall on the 43 faces dlib annotated in the PASCAL VOC photos (IoU ≥ 0.3), and detections
  matching no annotation;
- agreement with dlib: photos whose face counts differ, the worst IoU of a box with dlib's nearest,
  the largest confidence difference.

dlib's wheel runs its network on one core; ``cnn-onnx`` uses ``--threads`` onnxruntime threads
(one row per value).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from faceshot.detect import create_detector
from faceshot.evaluate.detection import detection_recall, iou
from faceshot.io import load_image
from faceshot.results import Box

from detect_speed import DATASETS, photos, print_rows, scene_truth  # this folder: run as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="onnxruntime threads (one row each)")
    parser.add_argument("--examples", action="store_true", help="also the face_recognition example photos")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    detectors = {"cnn (dlib)": create_detector("cnn")}
    for threads in args.threads:
        detectors[f"cnn-onnx, {threads} thread{'s' if threads > 1 else ''}"] = create_detector("cnn-onnx", threads=threads)
    truth = scene_truth()
    paths = photos(DATASETS / "scenes") + (photos(DATASETS / "face_recognition_examples") if args.examples else [])

    # Load the models (and convert the network, once) before timing.
    warm = load_image(paths[0])
    for detector in detectors.values():
        detector.locate(warm)  # type: ignore[attr-defined]
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")

    found: dict[str, dict[str, list[tuple[Box, float]]]] = {label: {} for label in detectors}
    seconds = dict.fromkeys(detectors, 0.0)
    start_all = time.perf_counter()
    for path in paths:
        image = load_image(path)
        for label, detector in detectors.items():
            start = time.perf_counter()
            found[label][str(path)] = detector.locate(image)  # type: ignore[attr-defined]
            seconds[label] += time.perf_counter() - start

    reference = found["cnn (dlib)"]
    rows = []
    for label in detectors:
        boxes = found[label]
        recall = detection_recall(truth, lambda name: [b for b, _ in boxes[str(DATASETS / "scenes" / name)]])
        differ, worst_iou, worst_score = 0, 1.0, 0.0
        for key, theirs in reference.items():
            ours = boxes[key]
            differ += len(ours) != len(theirs)
            for box, score in theirs:
                if ours:
                    match, match_score = max(ours, key=lambda item: iou(item[0], box))
                    worst_iou = min(worst_iou, iou(match, box))
                    worst_score = max(worst_score, abs(match_score - score))
        rows.append({
            "detector": label,
            "ms_per_photo": round(seconds[label] / len(paths) * 1000, 1),
            "speedup": round(seconds["cnn (dlib)"] / seconds[label], 2),
            "recall": round(recall.recall, 3),
            "annotated_found": recall.found,
            "extra": recall.extra,
            "faces": sum(len(b) for b in boxes.values()),
            "photos_with_other_counts": differ,
            "worst_iou_to_dlib": round(worst_iou, 4),
            "max_confidence_difference": worst_score,
        })
    print(f"\n{len(paths)} photos, {sum(map(len, truth.values()))} annotated faces; "
          f"{time.perf_counter() - start_all:.0f} s")
    print_rows(rows, [
        ("detector", "detector", "<24"), ("ms_per_photo", "ms/photo", ">10.1f"), ("speedup", "× dlib", ">8.2f"),
        ("recall", "recall", ">8.3f"), ("extra", "extra", ">7"), ("faces", "faces", ">7"),
        ("photos_with_other_counts", "counts differ", ">15"), ("worst_iou_to_dlib", "worst IoU", ">11.4f"),
        ("max_confidence_difference", "max Δconf", ">11.2g"),
    ], args.json)

if __name__ == "__main__":
    main()
