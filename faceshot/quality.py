"""The enrollment gate: is this face good enough to be someone's reference?

A gallery compares every later photo against its enrolled faces, so one poor reference harms every
search for that person. Three figures are measured on each face and compared with limits:

``width``
    the face box width in pixels of the original photo. Limit 60: on clean downscaled photos the
    embedding barely moves down to 63 px (cosine 0.991–0.999 to the full-size one over 14 people),
    moves further at 53 px (0.988–0.998) and 44 px (0.977–0.996); the HOG detector's smallest box
    is about 37 px. A reference is held to a stricter standard than a photo being searched.
``sharpness``
    the variance of the Laplacian of the aligned 150 × 150 chip in gray levels (low = blurred).
    Limit 8: sharp portraits measure 49–1,800 and LFW's soft 250 × 250 photos 10 at the 1st
    percentile (median 35); a Gaussian blur of 2 chip pixels gives 5–16, of 3 pixels 2–6, and from
    3 pixels on the blurred face scores higher against *other* people (up to 0.904 against 0.886
    unblurred for obama.jpg, above the default threshold) while the genuine score falls.
``yaw``
    how far the head is turned, from the five landmarks: ``(d1 - d2) / (d1 + d2)`` where d1, d2 are
    the distances from each eye's centre to the base of the nose (0 = frontal; the sign says
    which way). Limit 0.2 in absolute value: on 344 LFW genuine pairs the mean score was 0.955 when
    both faces measured under 0.1, 0.944 with one at 0.15–0.2 and 0.921 above 0.2; 99% of LFW faces
    measure under 0.18 (the HOG detector rarely finds faces turned further).

The detector's confidence is recorded too (``detector_score``) but not judged: its scale differs
between detectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from faceshot.errors import QualityError
from faceshot.results import EYES_NOSE_MOUTH, SCHEMES, Face

__all__ = ["Quality", "QualityLimits", "DEFAULT_LIMITS", "assess", "sharpness", "yaw", "require"]

# ITU-R BT.601 luma weights: the usual RGB → gray conversion.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class QualityLimits:
    """The limits a face must meet to be enrolled (see the module docstring for how they were chosen).

    Raise ``min_width`` or ``min_sharpness``, or lower ``max_yaw``, to accept only better references.
    """

    min_width: int = 60
    min_sharpness: float = 8.0
    max_yaw: float = 0.2


DEFAULT_LIMITS = QualityLimits()


@dataclass(frozen=True)
class Quality:
    """The figures measured on one face, and why it falls short (``reasons`` is empty when it passes)."""

    width: int
    sharpness: float
    yaw: float
    detector_score: float
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "sharpness": round(self.sharpness, 2),
            "yaw": round(self.yaw, 4),
            "detector_score": round(self.detector_score, 4),
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Quality":
        return cls(
            width=int(data.get("width", 0)),
            sharpness=float(data.get("sharpness", 0.0)),
            yaw=float(data.get("yaw", 0.0)),
            detector_score=float(data.get("detector_score", 0.0)),
            reasons=tuple(data.get("reasons", ())),
        )


def sharpness(chip: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of an RGB (or gray) chip: low values mean a blurred face."""
    gray = chip.astype(np.float32)
    if gray.ndim == 3:
        gray = gray @ _LUMA
    laplacian = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4.0 * gray[1:-1, 1:-1]
    return float(laplacian.var())


def yaw(face: Face) -> float:
    """Signed eye-to-nose asymmetry from the five landmarks of either scheme (dlib's eye corners
    and nose base, or eye centres and nose tip): 0 for a frontal face, ±1 at the limit."""
    points = np.asarray(face.landmarks, dtype=np.float64)
    if points.shape != (5, 2) or face.scheme not in SCHEMES:
        return 0.0  # pose cannot be judged from these points, so it is not judged
    if face.scheme == EYES_NOSE_MOUTH:
        first_eye, second_eye, nose = points[0], points[1], points[2]
    else:
        first_eye, second_eye, nose = points[0:2].mean(axis=0), points[2:4].mean(axis=0), points[4]
    d1 = float(np.linalg.norm(first_eye - nose))
    d2 = float(np.linalg.norm(second_eye - nose))
    return (d1 - d2) / (d1 + d2) if d1 + d2 > 0 else 0.0


def assess(face: Face, chip: np.ndarray, limits: QualityLimits = DEFAULT_LIMITS) -> Quality:
    """Measure one face (its box and landmarks, and its aligned chip) against ``limits``."""
    width = face.box.width
    sharp = sharpness(chip)
    turn = yaw(face)
    reasons = []
    if width < limits.min_width:
        reasons.append(f"face too small: {width} px wide, at least {limits.min_width} needed")
    if sharp < limits.min_sharpness:
        reasons.append(f"face too blurred: sharpness {sharp:.1f}, at least {limits.min_sharpness:g} needed")
    if abs(turn) > limits.max_yaw:
        reasons.append(f"face turned too far: yaw figure {abs(turn):.2f}, at most {limits.max_yaw:g} allowed")
    return Quality(width, sharp, turn, float(face.score), tuple(reasons))


def require(quality: Quality, name: str) -> None:
    """Raise :class:`QualityError` naming the photo and every reason when ``quality`` falls short."""
    if quality.reasons:
        raise QualityError(f"{name}: {'; '.join(quality.reasons)} (force=True enrolls it anyway)")
