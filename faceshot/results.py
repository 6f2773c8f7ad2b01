"""The frozen results faceshot returns. Shapes are stable: lists are always lists, never ``None``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceshot.match import OperatingPoint

__all__ = ["Box", "Face", "FaceEmbedding", "Verification", "DLIB_5", "EYES_NOSE_MOUTH", "SCHEMES"]

#: Landmark schemes: which five points ``Face.landmarks`` holds, in this order.
#: ``dlib-5``: dlib's 5-point shape predictor — the two corners of the eye on the image's left, the
#: two corners of the other eye, the base of the nose (what dlib's face chips and ResNet expect).
DLIB_5 = "dlib-5"
#: ``eyes-nose-mouth``: the eye centre on the image's left, the other eye centre, the nose tip, the
#: mouth corner on the left, the other mouth corner (MTCNN's, YuNet's, RetinaFace's; ArcFace's template).
EYES_NOSE_MOUTH = "eyes-nose-mouth"
SCHEMES = (DLIB_5, EYES_NOSE_MOUTH)


@dataclass(frozen=True)
class Box:
    """A face box in pixels of the original image; ``right`` and ``bottom`` are exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)

    def iou(self, other: "Box") -> float:
        """Intersection over union with ``other``: 0 when they do not overlap, 1 for the same box."""
        width = min(self.right, other.right) - max(self.left, other.left)
        height = min(self.bottom, other.bottom) - max(self.top, other.top)
        overlap = width * height if width > 0 and height > 0 else 0
        union = self.area + other.area - overlap
        return overlap / union if union else 0.0

    def to_dict(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "right": self.right, "bottom": self.bottom}


@dataclass(frozen=True)
class Face:
    """One detected face.

    ``score`` is the detector's confidence (its own scale: higher is surer). ``landmarks`` are five
    points ``(x, y)`` in original-image pixels, of the scheme ``scheme`` names (:data:`DLIB_5`, the
    default, or :data:`EYES_NOSE_MOUTH`), in that scheme's order.
    """

    box: Box
    score: float
    landmarks: tuple[tuple[float, float], ...]
    scheme: str = DLIB_5

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": self.box.to_dict(),
            "score": round(self.score, 4),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
            "landmark_scheme": self.scheme,
        }


@dataclass(frozen=True, eq=False)
class FaceEmbedding:
    """A face and its unit-length embedding vector."""

    face: Face
    embedding: np.ndarray


@dataclass(frozen=True)
class Verification:
    """The answer to "are these two photos the same person?".

    ``score`` is the cosine similarity of the two embeddings (1 = identical, around 0 = unrelated);
    ``same`` is ``score >= threshold``. ``far`` is the false-accept rate measured at that threshold on
    the calibration's reference set (the embedder's, LFW; or a gallery's own), ``None`` where not
    measured: the chance that two different people score this high. ``clamped``: the FAR asked for
    lies beyond what the calibration measured, so its strictest measured threshold was used (and
    ``far`` is the rate there, higher than asked). ``notes`` says what was decided on the user's
    behalf, e.g. which of several faces was used.
    """

    same: bool
    score: float
    threshold: float
    far: float | None
    face_a: Face
    face_b: Face
    faces_in_a: int
    faces_in_b: int
    notes: tuple[str, ...] = field(default=())
    clamped: bool = False

    @property
    def operating_point(self) -> OperatingPoint:
        """The threshold used and the false-accept rate it stands for."""
        return OperatingPoint(self.threshold, self.far, clamped=self.clamped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "same": self.same,
            "score": round(self.score, 6),
            "threshold": round(self.threshold, 6),
            "far": self.far,
            "clamped": self.clamped,
            "box_a": self.face_a.box.to_dict(),
            "box_b": self.face_b.box.to_dict(),
            "faces_in_a": self.faces_in_a,
            "faces_in_b": self.faces_in_b,
            "notes": list(self.notes),
        }
