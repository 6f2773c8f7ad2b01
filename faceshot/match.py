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

**An operating point** (:class:`OperatingPoint`) is what a result reports: the threshold used and
the rates it stands for. The table is the only source of rates: a threshold outside it has FAR
"not measured" (``None``), and a target rate beyond it gets the last measured threshold with
``clamped=True`` — never a silent clamp, never a made-up rate. Verification and identification
resolve their thresholds through one function, :func:`resolve_operating_point`.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, replace
from importlib.resources import files
from typing import Any, Sequence

import numpy as np

from faceshot.errors import ConfigError

__all__ = [
    "cosine_similarity",
    "Calibration",
    "OperatingPoint",
    "resolve_operating_point",
    "check_threshold",
    "check_rate",
    "check_embeddings",
    "decide",
    "DEFAULT_FPIR",
]

#: The identification default: at most 1% of strangers named as someone (see ``resolve_operating_point``).
DEFAULT_FPIR = 0.01


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
    """The threshold a decision used and the error rates it stands for.

    ``threshold``: the score a pair (or a probe's best match) must reach; always a number.
    ``far``: the per-comparison false-accept rate measured at ``threshold`` on the calibration's
    reference set (interpolated between its table rows), or ``None`` where that was not measured
    (an embedder without a calibration, or a user's threshold outside the table).
    ``fpir``: for identification, the share of strangers expected to be named as someone when each
    is compared with the faces searched, ``1 - (1 - far)^faces``; ``None`` for verification, or
    when ``far`` is not known.
    ``clamped``: the asked target (a FAR or FPIR) lies beyond what the calibration measured, so
    its last measured threshold was used; ``far``/``fpir`` are then the rates at that threshold,
    looser than asked.
    """

    threshold: float
    far: float | None
    fpir: float | None = None
    clamped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": round(self.threshold, 6), "far": self.far, "fpir": self.fpir, "clamped": self.clamped}


@dataclass(frozen=True)
class Calibration:
    """An embedder's measured operating points.

    ``threshold``: the default for verification (for the bundled ones, chosen for best accuracy on
    the reference pairs; for ``faceshot calibrate``, the threshold at the FAR asked for).
    ``far_table``: ``(threshold, far)`` rows, thresholds ascending, measured on impostor pairs;
    nothing is promised outside its rows. ``reference``: in words, what was measured and how.
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
        """The inverse of :meth:`to_dict`; :class:`ConfigError` if a field is missing or malformed."""
        try:
            table = tuple((float(t), float(f)) for t, f in data["far_table"])
            calibration = cls(
                embedder=str(data["embedder"]),
                threshold=check_threshold(data["threshold"]),
                far_table=table,
                reference=str(data["reference"]),
                figures=dict(data.get("figures", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a calibration: {exc!r} in its fields") from None
        if [t for t, _ in table] != sorted(t for t, _ in table) or any(not 0.0 < f <= 1.0 for _, f in table):
            raise ConfigError("not a calibration: far_table rows must have ascending thresholds and rates in (0, 1]")
        return calibration

    @classmethod
    def from_setting(
        cls, saved: dict[str, Any] | None, *, embedder: str, bundled: "Calibration | None"
    ) -> "Calibration | None":
        """The calibration a gallery uses, from what ``faceshot calibrate --db`` saved in it.

        ``saved``: the gallery's ``calibration`` setting: a whole calibration (a FAR table, saved
        since the table replaced the single threshold), an older gallery's ``{"threshold": x, ...}``
        (``x`` becomes the default threshold, with the ``bundled`` table's FARs), or ``None``
        (the ``bundled`` calibration). ``embedder``: the gallery's vector space; a calibration
        measured in another raises :class:`ConfigError`.
        """
        if saved is None:
            return bundled
        if "far_table" in saved:
            calibration = cls.from_dict(saved)
            if calibration.embedder != embedder:
                raise ConfigError(
                    f"the gallery's calibration was measured with {calibration.embedder!r}, its faces are "
                    f"{embedder!r} vectors; run `faceshot calibrate --db` again"
                )
            return calibration
        if "threshold" not in saved:
            raise ConfigError("the gallery's calibration setting holds neither a FAR table nor a threshold")
        threshold = check_threshold(saved["threshold"])
        reference = (
            f"default threshold {threshold:g} from faceshot calibrate on {saved.get('source', 'your photos')} "
            f"(FAR {saved.get('far', 'unknown')} there)"
        )
        if bundled is None:
            return cls(embedder, threshold, (), reference, dict(saved))
        return replace(
            bundled,
            threshold=threshold,
            reference=f"{reference}; FAR table: {bundled.reference}",
            figures={**bundled.figures, "calibrate": dict(saved)},
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, the format of the bundled files and of a gallery's saved calibration."""
        return {
            "embedder": self.embedder,
            "threshold": self.threshold,
            "reference": self.reference,
            "figures": dict(self.figures),
            "far_table": [list(row) for row in self.far_table],
        }

    def far_at(self, threshold: float) -> float | None:
        """The false-accept rate measured at ``threshold`` (interpolated between table rows, in log FAR).

        ``None`` (not measured) below the first row and above the last: the table says nothing there.
        """
        table = self.far_table
        if not table or not table[0][0] <= threshold <= table[-1][0]:
            return None
        for (t0, f0), (t1, f1) in zip(table, table[1:]):
            if t0 <= threshold <= t1:
                w = (threshold - t0) / (t1 - t0) if t1 > t0 else 0.0
                return math.exp((1 - w) * math.log(f0) + w * math.log(f1))
        return table[-1][1]  # a one-row table, at its threshold

    def threshold_for(self, far: float) -> float:
        """The lowest threshold whose measured false-accept rate is at most ``far``.

        Beyond the table the last measured threshold (or, for a rate above the first row's, the
        first); :meth:`point_for` says when that happened.
        """
        return self.point_for(far).threshold

    def point_for(self, far: float) -> OperatingPoint:
        """The operating point for a target false-accept rate; ``clamped`` when beyond the table.

        Raises :class:`ConfigError` if ``far`` is not a fraction in (0, 1) or there is no table.
        """
        far = check_rate(far, "false-accept rate")
        table = self.far_table
        if not table:
            raise ConfigError(f"{self.embedder}'s calibration has no FAR table; pass a threshold")
        if far < table[-1][1]:
            return OperatingPoint(table[-1][0], table[-1][1], clamped=True)
        if far > table[0][1]:
            return OperatingPoint(table[0][0], table[0][1], clamped=True)
        for (t0, f0), (t1, f1) in zip(table, table[1:]):
            if f0 >= far >= f1:
                w = (math.log(far) - math.log(f0)) / (math.log(f1) - math.log(f0)) if f1 != f0 else 1.0
                return OperatingPoint(t0 + w * (t1 - t0), far)
        return OperatingPoint(table[0][0], table[0][1])  # a one-row table, at its rate

    def operating_point(self, threshold: float | None = None, far: float | None = None) -> OperatingPoint:
        """Resolve "a threshold, or a target FAR, or neither (the default)": see :func:`resolve_operating_point`."""
        return resolve_operating_point(self, threshold=threshold, far=far)


def check_threshold(value: Any) -> float:
    """``value`` as a threshold: a finite score in [-1, 1], else :class:`ConfigError`."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"a threshold is a cosine similarity between -1 and 1, got {value!r}") from None
    if not -1.0 <= threshold <= 1.0:  # also refuses nan
        raise ConfigError(f"a threshold is a cosine similarity between -1 and 1, got {value!r}")
    return threshold


def check_rate(value: Any, what: str) -> float:
    """``value`` as an error rate: a fraction strictly between 0 and 1, else :class:`ConfigError`."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"a {what} is a fraction between 0 and 1, got {value!r}") from None
    if not 0.0 < rate < 1.0:  # also refuses nan
        raise ConfigError(f"a {what} is a fraction between 0 and 1, got {value!r}")
    return rate


def fpir_of(far: float, faces: int) -> float:
    """FPIR when a stranger is compared with ``faces`` faces, each falsely accepting with ``far``."""
    return -math.expm1(max(faces, 1) * math.log1p(-far))  # 1 - (1 - far)^faces


def far_for(fpir: float, faces: int) -> float:
    """The per-comparison FAR that gives ``fpir`` over ``faces`` comparisons: ``1 - (1 - fpir)^(1/faces)``."""
    return -math.expm1(math.log1p(-fpir) / max(faces, 1))


def resolve_operating_point(
    calibration: Calibration | None,
    *,
    threshold: float | None = None,
    far: float | None = None,
    fpir: float | None = None,
    faces: int | None = None,
    stored: float | None = None,
    embedder: str | None = None,
) -> OperatingPoint:
    """The operating point of a verification (``faces`` is ``None``) or an identification.

    First given, first used: ``threshold`` (a score, checked to be finite and in [-1, 1]); ``far``
    (a per-comparison false-accept rate); ``fpir`` (identification only: the share of strangers
    who may be named); ``stored`` (a threshold saved with a gallery); else, for verification, the
    calibration's default threshold, and for identification FPIR :data:`DEFAULT_FPIR`. Giving two
    of ``threshold``, ``far`` and ``fpir`` raises :class:`ConfigError`.

    Identification: a stranger is compared with ``faces`` enrolled faces, so each comparison may
    falsely accept with probability ``1 - (1 - fpir)^(1/faces)`` (about ``fpir / faces``): the
    threshold is the calibration's at that rate. On LFW (BENCHMARKS.md) this predicted the measured
    FPIR-1% thresholds within 0.0021 for one-shot galleries of 10 to 1,680 people; with mean
    templates of several faces per person, counting faces (not people) kept the measured FPIR at
    1.1-1.35%. A target beyond the calibration's table gives its last threshold with
    ``clamped=True``. ``calibration`` ``None`` (an embedder without one) accepts only thresholds;
    ``embedder`` names it in that error.
    """
    given = [name for name, value in (("threshold", threshold), ("far", far), ("fpir", fpir)) if value is not None]
    if len(given) > 1:
        which = f"not both {given[0]} and {given[1]}" if len(given) == 2 else "not all three"
        raise ConfigError(f"give one of threshold, far and fpir, {which}")
    identifying = faces is not None
    if fpir is not None:
        if not identifying:
            raise ConfigError("an FPIR is for identification: give the number of faces searched")
        fpir = check_rate(fpir, "false-positive identification rate")
    if threshold is None and far is None and fpir is None:
        if stored is not None:
            threshold = stored
        elif identifying:
            fpir = DEFAULT_FPIR
    if threshold is not None:
        threshold = check_threshold(threshold)
    if calibration is None:
        if threshold is None:
            who = f"embedder {embedder!r}" if embedder else "this embedder"
            raise ConfigError(f"{who} has no calibration; pass a threshold")
        return OperatingPoint(threshold, None)

    if threshold is not None:
        point = OperatingPoint(threshold, calibration.far_at(threshold))
    elif far is not None:
        point = calibration.point_for(far)
    elif fpir is not None:
        assert faces is not None
        point = calibration.point_for(far_for(fpir, faces))
        if not point.clamped:
            return replace(point, fpir=fpir)
    else:
        threshold = calibration.threshold
        point = OperatingPoint(threshold, calibration.far_at(threshold))
    if identifying and point.far is not None:
        point = replace(point, fpir=fpir_of(point.far, faces))  # type: ignore[arg-type]
    return point


@functools.lru_cache(maxsize=None)
def _bundled(embedder: str) -> Calibration | None:
    resource = files("faceshot.embed") / "calibration" / f"{embedder}.json"
    if not resource.is_file():
        return None
    return Calibration.from_dict(json.loads(resource.read_text()))
