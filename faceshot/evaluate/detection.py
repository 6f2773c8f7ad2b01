"""Detection recall against annotated boxes (dlib's imglab XML, as shipped with dlib's examples).

A face counts as found when a detection overlaps its box with an intersection over union of at
least ``min_iou``; 0.3 is lenient on purpose, because detectors draw boxes of different shapes
(dlib's HOG box is tighter than most annotations) and the question is whether the face was seen.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable, Iterable

from faceshot.errors import ConfigError
from faceshot.results import Box

__all__ = ["read_imglab_boxes", "iou", "DetectionRecall", "detection_recall"]


def read_imglab_boxes(path: str | os.PathLike[str], prefix: str = "") -> dict[str, list[Box]]:
    """``{image file name: [boxes]}`` from an imglab XML file, leaving out boxes marked ``ignore``.

    ``prefix`` is put before each file name (the shared scenes folder names dlib's photos ``dlib_*``).
    """
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"{path}: cannot read the box annotations: {exc}") from None
    boxes: dict[str, list[Box]] = {}
    for image in root.iter("image"):
        for box in image.iter("box"):
            if box.get("ignore") == "1":
                continue
            left, top = int(box.get("left", 0)), int(box.get("top", 0))
            right, bottom = left + int(box.get("width", 0)), top + int(box.get("height", 0))
            boxes.setdefault(prefix + str(image.get("file")), []).append(Box(left, top, right, bottom))
    return boxes


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    return a.iou(b)


@dataclass(frozen=True)
class DetectionRecall:
    found: int
    annotated: int
    extra: int  # detections that match no annotated face

    @property
    def recall(self) -> float:
        return self.found / self.annotated if self.annotated else float("nan")


def detection_recall(
    truth: dict[str, list[Box]], detect: Callable[[str], Iterable[Box]], *, min_iou: float = 0.3
) -> DetectionRecall:
    """Recall of ``detect(image name) -> boxes`` over the annotated images."""
    found = annotated = extra = 0
    for name, boxes in sorted(truth.items()):
        detected = list(detect(name))
        matched = sum(any(iou(t, d) >= min_iou for d in detected) for t in boxes)
        found, annotated = found + matched, annotated + len(boxes)
        extra += sum(not any(iou(t, d) >= min_iou for t in boxes) for d in detected)
    return DetectionRecall(found, annotated, extra)
