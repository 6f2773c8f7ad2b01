"""Box adapters: another detector's box moved and scaled to look like the box dlib's HOG detector
draws around the same face, so dlib's 5-point shape predictor (trained on such boxes) places its
points where it would on HOG's box. Fitted by ``benchmarks/fit_box_adapter.py`` on LFW DevTrain.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from faceshot.detect import Detector
from faceshot.detect.dlib_detectors import DlibDetector
from faceshot.errors import ConfigError
from faceshot.results import EYES_NOSE_MOUTH, SCHEMES, Box, Face

__all__ = ["BoxAdapter", "PointsDetector"]


@dataclass(frozen=True)
class BoxAdapter:
    """The adapted box of a ``w × h`` box centred at ``(cx, cy)`` (pixels) is centred at
    ``(cx + dx·w, cy + dy·h)`` and is ``sx·w × sy·h``."""

    dx: float = 0.0
    dy: float = 0.0
    sx: float = 1.0
    sy: float = 1.0

    def __call__(self, box: Box) -> Box:
        w, h = box.width, box.height
        cx, cy = (box.left + box.right) / 2 + self.dx * w, (box.top + box.bottom) / 2 + self.dy * h
        half_w, half_h = self.sx * w / 2, self.sy * h / 2
        return Box(round(cx - half_w), round(cy - half_h), round(cx + half_w), round(cy + half_h))

    @classmethod
    def fit(cls, pairs: Iterable[tuple[Box, Box]]) -> "BoxAdapter":
        """The adapter taking each ``(box, reference)`` pair's box to its reference: medians of the
        centre shifts and side ratios (robust to the odd mismatched pair)."""
        rows = np.array(
            [
                (
                    ((r.left + r.right) - (b.left + b.right)) / 2 / b.width,
                    ((r.top + r.bottom) - (b.top + b.bottom)) / 2 / b.height,
                    r.width / b.width,
                    r.height / b.height,
                )
                for b, r in pairs
                if b.width > 0 and b.height > 0
            ]
        )
        if not len(rows):
            raise ValueError("no box pairs to fit an adapter on")
        dx, dy, sx, sy = (round(float(v), 4) for v in np.median(rows, axis=0))
        return cls(dx, dy, sx, sy)

    def __str__(self) -> str:
        return f"dx={self.dx:+.4f} dy={self.dy:+.4f} sx={self.sx:.4f} sy={self.sy:.4f}"


class PointsDetector(Detector):
    """A detector with five points of its own (``mtcnn``, ``yunet``: eye centres, nose tip, mouth
    corners). ``landmarks`` (an option of each) chooses which points :meth:`detect` gives:

    - ``"dlib-5"`` (default): dlib's 5-point predictor placed on the box moved by :attr:`ADAPTER`
      (fitted so its points agree with those on HOG's box), for dlib's aligner and ResNet;
    - ``"eyes-nose-mouth"``: the detector's own points, for aligners with that template (ArcFace's).

    Subclasses implement ``locate(image) -> list[Detection]``.
    """

    #: Moves this detector's boxes to where HOG draws them (``benchmarks/fit_box_adapter.py``).
    ADAPTER = BoxAdapter()

    def _choose_scheme(self, landmarks: str) -> None:
        if landmarks not in SCHEMES:
            raise ConfigError(f"landmarks must be one of {', '.join(SCHEMES)}, got {landmarks!r}")
        self.scheme = landmarks

    @abstractmethod
    def locate(self, image: np.ndarray) -> list[Any]:
        """The faces found, each with its box, confidence and own five points."""

    def detect(self, image: np.ndarray) -> list[Face]:
        """Every face, largest first, with landmarks of :attr:`scheme` (see the class)."""
        faces = []
        for found in self.locate(image):
            if self.scheme == EYES_NOSE_MOUTH:
                points = tuple((float(x), float(y)) for x, y in found.points)
            else:
                points = DlibDetector.landmarks(self, image, self.ADAPTER(found.box))  # type: ignore[arg-type]
            faces.append(Face(box=found.box, score=found.confidence, landmarks=points, scheme=self.scheme))
        faces.sort(key=lambda face: face.box.area, reverse=True)
        return faces
