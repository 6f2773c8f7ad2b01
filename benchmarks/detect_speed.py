"""How fast can the HOG detector go without missing faces: recall against time for several settings.

    python benchmarks/detect_speed.py [--lfw 300] [--cnn] [--json OUT]

Settings compared (dlib's HOG detector as faceshot wraps it; see ``faceshot.detect.dlib_detectors``):
colour or grayscale search, when to upsample (double) the photo (never, photos of at most 640 px,
at most 1,000 px (the default), always, as face_recognition does), the size large photos are
downscaled to before the search (``max_side``), and the portrait shortcut (``large_face``, default
0.2: search the photo as it is first, and double it only when no face at least that fraction of
its shorter side was found).

Measured for each setting, one thread, the settings taking turns on every photo so that a change
in the machine's load touches all of them alike:

- recall on the 43 faces annotated by dlib in the ``scenes`` PASCAL VOC photos (IoU ≥ 0.3) and the
  detections that match no annotation;
- faces found in the 36 photos of ``scenes`` + ``face_recognition_examples``, how many of the faces
  found there without the portrait shortcut each setting finds too (IoU ≥ 0.5), and ms per photo;
- LFW: photos of a fixed random sample in which a face is found, and ms per photo;
- ``nonfaces``: photos with a detection (false alarms).

``--cnn`` adds dlib's CNN detector (about 2 s per photo here: minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from faceshot.detect import Detector, create_detector
from faceshot.evaluate.detection import detection_recall, iou, read_imglab_boxes
from faceshot.io import IMAGE_SUFFIXES, load_image
from faceshot.results import Box

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "no portrait shortcut"  # the faces every setting is compared with
DATASETS = Path(os.environ.get("FACESHOT_DATASETS", ROOT.parent / "shared" / "datasets"))

SETTINGS: dict[str, dict[str, Any]] = {
    "default (colour, ≤1000 px, shortcut 0.2)": {},
    "no portrait shortcut": {"large_face": None},
    "portrait shortcut 0.3": {"large_face": 0.3},
    "grayscale": {"gray": True},
    "grayscale, no shortcut": {"gray": True, "large_face": None},
    "never upsample": {"upsample": 0},
    "upsample ≤640 px, no shortcut": {"upsample_below": 640, "large_face": None},
    "always upsample (face_recognition)": {"upsample": 1, "max_side": 100_000},
    "max_side 1280": {"max_side": 1280},
    "max_side 1280, no shortcut": {"max_side": 1280, "large_face": None},
}


def photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


#: dlib's face-box annotations of its PASCAL VOC photos in ``scenes`` (named ``dlib_*`` there).
SCENE_ANNOTATIONS = ("dlib_training_face_boxes.xml", "dlib_testing_face_boxes.xml")


def scene_truth() -> dict[str, list[Box]]:
    """The face boxes dlib annotated in the ``scenes`` PASCAL VOC photos, by photo name."""
    truth: dict[str, list[Box]] = {}
    for name in SCENE_ANNOTATIONS:
        truth.update(read_imglab_boxes(DATASETS / "scenes" / name, prefix="dlib_"))
    return truth


def print_rows(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]], out: Path | None) -> None:
    """A table of ``rows`` (``columns``: key, header, format such as ``>8.3f``; the first left-aligned),
    then the load average, and the rows as JSON in ``out``."""
    widths = [int("".join(c for c in fmt.split(".")[0] if c.isdigit())) for _, _, fmt in columns]
    headers = [header for _, header, _ in columns]
    print("".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(headers, widths))))
    for row in rows:
        print("".join(f"{row[key]:{fmt}}" for key, _, fmt in columns))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if out:
        out.write_text(json.dumps(rows, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=int, default=300, help="LFW photos in the sample")
    parser.add_argument("--cnn", action="store_true", help="also time dlib's CNN detector (slow)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    detectors: dict[str, Detector] = {label: create_detector("hog", **opts) for label, opts in SETTINGS.items()}
    if args.cnn:
        detectors["cnn (default scaling)"] = create_detector("cnn")
    truth = scene_truth()
    scenes = photos(DATASETS / "scenes") + photos(DATASETS / "face_recognition_examples")
    lfw = sorted(random.Random(0).sample(sorted((DATASETS / "lfw" / "images").glob("*/*.jpg")), args.lfw))
    nonfaces = photos(DATASETS / "nonfaces")
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")

    # Every setting on every photo, in turns; boxes kept per setting and photo.
    boxes: dict[str, dict[str, list[Box]]] = {label: {} for label in detectors}
    seconds: dict[str, dict[str, float]] = {label: {"scenes": 0.0, "lfw": 0.0, "nonfaces": 0.0} for label in detectors}
    for group, paths in (("scenes", scenes), ("lfw", lfw), ("nonfaces", nonfaces)):
        for path in paths:
            image = load_image(path)
            for label, detector in detectors.items():
                start = time.perf_counter()
                found = detector.locate(image)  # type: ignore[attr-defined]
                seconds[label][group] += time.perf_counter() - start
                boxes[label][str(path)] = [box for box, _ in found]

    rows = []
    for label in detectors:
        found = boxes[label]
        recall = detection_recall(truth, lambda name: found[str(DATASETS / "scenes" / name)])
        rows.append({
            "setting": label,
            "recall": round(recall.recall, 3),
            "annotated_found": recall.found,
            "extra": recall.extra,
            "scene_faces": sum(len(found[str(p)]) for p in scenes),
            "reference_faces_found": sum(
                any(iou(ref, box) >= 0.5 for box in found[str(p)]) for p in scenes for ref in boxes[REFERENCE][str(p)]
            ),
            "scene_ms": round(seconds[label]["scenes"] / len(scenes) * 1000, 1),
            "lfw_with_face": sum(bool(found[str(p)]) for p in lfw),
            "lfw_ms": round(seconds[label]["lfw"] / len(lfw) * 1000, 1),
            "nonface_alarms": sum(bool(found[str(p)]) for p in nonfaces),
        })
    print(f"\nannotated faces: {sum(map(len, truth.values()))}; scene photos: {len(scenes)}; "
          f"LFW sample: {len(lfw)}; non-face photos: {len(nonfaces)}")
    print(f"same: of the faces found in the scene photos with '{REFERENCE}', how many this setting finds (IoU ≥ 0.5)")
    print_rows(rows, [
        ("setting", "setting", "<40"), ("recall", "recall", ">8.3f"), ("extra", "extra", ">6"),
        ("scene_faces", "faces", ">7"), ("reference_faces_found", "same", ">6"), ("scene_ms", "ms/scene", ">10.1f"),
        ("lfw_with_face", "LFW found", ">11"), ("lfw_ms", "ms/LFW", ">8.1f"), ("nonface_alarms", "alarms", ">8"),
    ], args.json)

if __name__ == "__main__":
    main()
