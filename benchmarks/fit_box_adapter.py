"""Fit the box adapters that let dlib's 5-point predictor run on MTCNN's and YuNet's boxes.

dlib's shape predictor was trained on boxes like its HOG detector's; another detector draws its
boxes elsewhere around the face (MTCNN's are taller and lower), so the predictor's points move.
An adapter maps the other detector's box to a HOG-like one: centre shifted by a fraction of the
box's size, side scaled by a factor (least squares over the faces both detectors find). Fitted on
LFW's DevTrain people, checked on DevTest's: the median distance between the predictor's points on
the adapted box and on HOG's box (pixels), before and after adapting.

    python benchmarks/fit_box_adapter.py --models .cache/models --yunet ../shared/models/face_detection_yunet_2026may.onnx
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceshot.detect import create_detector  # noqa: E402
from faceshot.detect.adapter import BoxAdapter  # noqa: E402
from faceshot.results import Box  # noqa: E402

LFW = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "lfw"


def people(split: str) -> list[str]:
    lines = (LFW / f"people{split}.txt").read_text().split("\n")[1:]
    return [line.split("\t")[0] for line in lines if "\t" in line]


def photos(split: str, count: int) -> list[Path]:
    found = []
    for name in people(split):
        found += sorted((LFW / "images" / name).glob("*.jpg"))[:2]
    rng = np.random.default_rng(0)
    return [found[i] for i in sorted(rng.choice(len(found), size=min(count, len(found)), replace=False))]


def centred(boxes: list[Box]) -> Box | None:
    near = [b for b in boxes if abs((b.left + b.right) / 2 - 125) < 30 and abs((b.top + b.bottom) / 2 - 125) < 30]
    return max(near, key=lambda b: b.area) if near else None


def pairs(detector, files: list[Path]) -> list[tuple[np.ndarray, Box, Box]]:
    hog = create_detector("hog")
    found = []
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"))
        reference = centred([box for box, _ in hog.locate(image)])
        other = centred([d.box for d in detector.locate(image)])
        if reference is not None and other is not None:
            found.append((image, other, reference))
    return found


def point_error(hog, pairs_: list[tuple[np.ndarray, Box, Box]], adapter: BoxAdapter | None) -> float:
    errors = []
    for image, other, reference in pairs_:
        box = other if adapter is None else adapter(other)
        a = np.asarray(hog.landmarks(image, box))
        b = np.asarray(hog.landmarks(image, reference))
        errors.append(np.linalg.norm(a - b, axis=1).mean())
    return float(np.median(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, required=True, help="where `faceshot models fetch mtcnn` wrote MTCNN")
    parser.add_argument("--yunet", type=Path, help="YuNet's .onnx file")
    parser.add_argument("--count", type=int, default=600, help="LFW photos per split (default 600)")
    args = parser.parse_args()
    detectors = {"mtcnn": create_detector("mtcnn", cache_dir=args.models)}
    if args.yunet:
        detectors["yunet"] = create_detector("yunet", model=str(args.yunet))
    hog = create_detector("hog")
    train, test = photos("DevTrain", args.count), photos("DevTest", args.count)
    print(f"LFW DevTrain photos {len(train)}, DevTest photos {len(test)}")
    print("| detector | faces fitted | faces checked | median point error, raw box (px) | adapted (px) | adapter |")
    print("|---|---|---|---|---|---|")
    for name, detector in detectors.items():
        start = time.perf_counter()
        fit, check = pairs(detector, train), pairs(detector, test)
        adapter = BoxAdapter.fit([(o, r) for _, o, r in fit])
        print(
            f"| {name} | {len(fit)} | {len(check)} | {point_error(hog, check, None):.2f} | "
            f"{point_error(hog, check, adapter):.2f} | {adapter} |  ({time.perf_counter() - start:.0f} s)"
        )


if __name__ == "__main__":
    main()
