"""Scores, thresholds and operating points.

**The score** faceshot reports everywhere is the cosine similarity of two unit-length embeddings:
1.0 for identical vectors, around 0 for unrelated faces, higher meaning more alike. (For unit
vectors the Euclidean distance is ``sqrt(2 - 2 * score)``. dlib's raw descriptors, which
face_recognition compares, are not unit length (norms 1.2–1.7 on LFW), so its 0.6 distance rule
sits near a score of 0.91 here, not the 0.82 the formula would suggest.)

**A threshold** turns a score into a decision: ``same = score >= threshold``. Raising it lets fewer
strangers through (a lower false-accept rate, FAR) and turns away more genuine pairs (a higher
false-reject rate, FRR). Each embedder ships a calibration measured on LFW: its default threshold
and a table from threshold to FAR, so a user can ask for "FAR 0.1%" instead of a bare number.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Sequence

import numpy as np

from faceshot.errors import ConfigError

__all__ = ["cosine_similarity", "Calibration", "OperatingPoint", "decide", "check_embeddings"]


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Scores between unit vectors: ``(D,)·(D,)`` → scalar, ``(N, D)·(M, D)`` → ``(N, M)``."""
    return np.asarray(a, dtype=np.float32) @ np.asarray(b, dtype=np.float32).T


def check_embeddings(vectors: np.ndarray, dim: int, *, tolerance: float = 1e-3) -> np.ndarray:
    """Embeddings as faceshot compares them: ``(N, dim)`` float32, finite, of unit length.

    A single ``(dim,)`` vector becomes ``(1, dim)``. Raises :class:`~faceshot.errors.ConfigError`
    (a ``ValueError``) naming what is wrong: another dimension, a NaN or infinity, or a length
    further than ``tolerance`` from 1 (scores are cosines only between unit vectors).
    """
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise ConfigError(f"embeddings must be (N, {dim}) arrays for this gallery, got shape {np.shape(vectors)}")
    if not np.all(np.isfinite(array)):
        raise ConfigError("embeddings must be finite numbers (found NaN or infinity)")
    norms = np.linalg.norm(array, axis=1)
    off = np.flatnonzero(np.abs(norms - 1.0) > tolerance)
    if len(off):
        raise ConfigError(
            f"embeddings must have unit length (cosine scores need it); row {int(off[0])} has length "
            f"{float(norms[off[0]]):.4f}: divide each row by its norm"
        )
    return np.ascontiguousarray(array)


def decide(candidates: Sequence[tuple[str, float]], threshold: float) -> tuple[str | None, float | None]:
    """The open-set decision on one probe: ``(identity or None, best score or None)``.

    ``candidates``: ``(name, score)`` pairs, best first (one per person). The best candidate is
    named only if their score reaches ``threshold``; otherwise the probe is unknown. There is no
    forced choice: an empty gallery, or a best score below the threshold, gives ``None``.
    """
    if not candidates:
        return None, None
    name, score = candidates[0]
    return (name if score >= threshold else None), float(score)


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and the false-accept rate it is known to give (``None`` when not measured)."""

    threshold: float
    far: float | None


@dataclass(frozen=True)
class Calibration:
    """An embedder's measured operating points.

    ``threshold``: the default, chosen for best accuracy on the reference pairs.
    ``far_table``: ``(threshold, far)`` rows, thresholds ascending, measured on impostor pairs.
    ``reference``: in words, what was measured and how.
    """

    embedder: str
    threshold: float
    far_table: tuple[tuple[float, float], ...]
    reference: str
    figures: dict[str, Any]

    @classmethod
    def bundled(cls, embedder: str) -> "Calibration | None":
        """The calibration shipped with faceshot for ``embedder``, if there is one."""
        return _bundled(embedder)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibration":
        return cls(
            embedder=data["embedder"],
            threshold=float(data["threshold"]),
            far_table=tuple((float(t), float(f)) for t, f in data["far_table"]),
            reference=data["reference"],
            figures=dict(data.get("figures", {})),
        )

    def far_at(self, threshold: float) -> float:
        """The false-accept rate measured at ``threshold`` (interpolated between table rows)."""
        table = self.far_table
        if threshold <= table[0][0]:
            return table[0][1]
        if threshold >= table[-1][0]:
            return table[-1][1]
        for (t0, f0), (t1, f1) in zip(table, table[1:]):
            if t0 <= threshold <= t1:
                w = (threshold - t0) / (t1 - t0) if t1 > t0 else 0.0
                return math.exp((1 - w) * math.log(f0) + w * math.log(f1))
        return table[-1][1]

    def threshold_for(self, far: float) -> float:
        """The lowest threshold whose measured false-accept rate is at most ``far``."""
        lowest = self.far_table[-1][1]
        if not 0.0 < far < 1.0:
            raise ConfigError(f"a false-accept rate is a fraction between 0 and 1, got {far}")
        if far < lowest:
            raise ConfigError(
                f"{self.embedder}'s reference set measures false-accept rates down to {lowest:g}; "
                f"{far:g} cannot be promised. Calibrate on a larger set, or pass a threshold"
            )
        for (t0, f0), (t1, f1) in zip(self.far_table, self.far_table[1:]):
            if f0 >= far >= f1:
                w = (math.log(far) - math.log(f0)) / (math.log(f1) - math.log(f0)) if f1 != f0 else 1.0
                return t0 + w * (t1 - t0)
        return self.far_table[0][0]

    def operating_point(self, threshold: float | None = None, far: float | None = None) -> OperatingPoint:
        """Resolve "a threshold, or a target FAR, or neither (the default)" to an operating point."""
        if threshold is not None and far is not None:
            raise ConfigError("give a threshold or a false-accept rate, not both")
        if far is not None:
            threshold = self.threshold_for(far)
            return OperatingPoint(threshold, far)
        if threshold is None:
            threshold = self.threshold
        return OperatingPoint(threshold, self.far_at(threshold))


@functools.lru_cache(maxsize=None)
def _bundled(embedder: str) -> Calibration | None:
    resource = files("faceshot.embed") / "calibration" / f"{embedder}.json"
    if not resource.is_file():
        return None
    return Calibration.from_dict(json.loads(resource.read_text()))
