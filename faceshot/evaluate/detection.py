"""Detection recall and precision against annotated boxes (dlib's imglab XML, as shipped with dlib's examples).

A face counts as found when a detection overlaps its box with an intersection over union of at
least ``min_iou``; 0.3 is lenient on purpose, because detectors draw boxes of different shapes
(dlib's HOG box is tighter than most annotations) and the question is whether the face was seen.
0.5 (PASCAL VOC's rule) also asks that the box be about right. Precision: the share of detections
that match an annotated face by the same rule.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from faceshot.errors import ConfigError
from faceshot.results import Box

__all__ = ["read_imglab_boxes", "iou", "DetectionRecall", "detection_recall", "annotated_folder_detection"]


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
    found: int  # annotated faces matched by a detection
    annotated: int
    extra: int  # detections that match no annotated face
    detections: int = 0  # every detection in the annotated images

    @property
    def recall(self) -> float:
        return self.found / self.annotated if self.annotated else float("nan")

    @property
    def precision(self) -> float:
        """Detections that match an annotated face, of all detections (nan when there are none)."""
        return (self.detections - self.extra) / self.detections if self.detections else float("nan")


def detection_recall(
    truth: dict[str, list[Box]], detect: Callable[[str], Iterable[Box]], *, min_iou: float = 0.3
) -> DetectionRecall:
    """Recall and precision of ``detect(image name) -> boxes`` over the annotated images."""
    found = annotated = extra = detections = 0
    for name, boxes in sorted(truth.items()):
        detected = list(detect(name))
        matched = sum(any(iou(t, d) >= min_iou for d in detected) for t in boxes)
        found, annotated = found + matched, annotated + len(boxes)
        extra += sum(not any(iou(t, d) >= min_iou for t in boxes) for d in detected)
        detections += len(detected)
    return DetectionRecall(found, annotated, extra, detections)


def annotated_folder_detection(
    detect: Callable[[np.ndarray], Iterable[object]],
    folder: str | os.PathLike[str],
    annotations: Sequence[str],
    *,
    prefix: str = "",
    min_iou: Sequence[float] = (0.3,),
) -> list[DetectionRecall]:
    """``detect`` (an RGB ``uint8 [H, W, 3]`` photo → faces with a ``.box``) on every photo of
    ``folder`` named in the imglab files ``annotations`` (in ``folder``; ``prefix`` as in
    :func:`read_imglab_boxes`): one :class:`DetectionRecall` per ``min_iou``, each photo searched once.
    Raises :class:`ConfigError` for an unreadable annotation file."""
    from PIL import Image

    folder = Path(folder)
    truth: dict[str, list[Box]] = {}
    for name in annotations:
        truth.update(read_imglab_boxes(folder / name, prefix=prefix))
    found = {
        name: [face.box for face in detect(np.asarray(Image.open(folder / name).convert("RGB")))]  # type: ignore[attr-defined]
        for name in sorted(truth)
    }
    return [detection_recall(truth, found.__getitem__, min_iou=threshold) for threshold in min_iou]
