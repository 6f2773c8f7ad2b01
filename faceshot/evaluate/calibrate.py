"""Calibrate on the user's own labelled photos: a FAR table, and the score that gives a chosen FAR.

Every pair of photos of one person is a genuine pair, every pair across two people an impostor
pair. The threshold is the score that only a fraction ``far`` of impostor pairs reach; how sure
that is depends on how many impostor pairs there were, so the measured false-accept rate comes
with a 95% Wilson interval. A rate below about 3 / (impostor pairs) cannot be measured at all.

The same impostor scores give a whole FAR table (:func:`far_rows`), from FAR 0.5 down to the rate
at which :data:`MIN_BEYOND` impostor pairs still reach the threshold, plus the row asked for.
``faceshot calibrate --db`` saves it in a gallery (:meth:`ThresholdCalibration.to_calibration`),
so that identification's FPIR threshold keeps rising with the gallery's size on the user's data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from faceshot.bulk import bulk_engine, one_vector_per_file
from faceshot.engine import Engine, Multiple
from faceshot.errors import ConfigError
from faceshot.evaluate.open_set import list_people
from faceshot.match import Calibration, check_rate
from faceshot.spec import EngineSpec

__all__ = ["ThresholdCalibration", "calibrate", "far_rows", "wilson_interval"]

#: At most this many impostor pairs are scored (a random sample beyond it).
MAX_IMPOSTOR_PAIRS = 20_000_000
#: A FAR table row needs at least this many impostor pairs at or above its threshold (relative
#: standard error of its FAR about 10% or less); the bundled tables follow the same rule.
MIN_BEYOND = 100
#: Rows of a FAR table between FAR 0.5 and its lowest measurable rate.
TABLE_ROWS = 40


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% (by default) Wilson score interval of a binomial proportion."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ThresholdCalibration:
    """A threshold measured on the user's photos, with the error rates it gives there."""

    threshold: float
    far_target: float
    far: float
    far_interval: tuple[float, float]
    frr: float
    impostor_pairs: int
    genuine_pairs: int
    people: int
    images_without_face: int
    embedder: str = ""
    far_table: tuple[tuple[float, float], ...] = ()

    def to_calibration(self, source: str) -> Calibration:
        """This measurement as a :class:`Calibration` (default threshold: the one for ``far_target``);
        ``source`` says in words which photos it was measured on."""
        return Calibration(
            embedder=self.embedder,
            threshold=self.threshold,
            far_table=self.far_table,
            reference=(
                f"faceshot calibrate on {source}: {self.people} people, {self.impostor_pairs:,} impostor "
                f"pairs; default threshold at FAR {self.far_target:g}; FAR table down to {MIN_BEYOND} "
                "impostor pairs at or above a row's threshold, plus the row asked for"
            ),
            figures={key: value for key, value in self.to_dict().items() if key != "far_table"} | {"source": source},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": round(self.threshold, 6),
            "far_target": self.far_target,
            "far": self.far,
            "far_interval_95": [round(v, 8) for v in self.far_interval],
            "frr": round(self.frr, 5),
            "impostor_pairs": self.impostor_pairs,
            "genuine_pairs": self.genuine_pairs,
            "people": self.people,
            "images_without_face": self.images_without_face,
            "embedder": self.embedder,
            "far_table": [list(row) for row in self.far_table],
        }


def calibrate(
    root: str | Path,
    far: float,
    *,
    engine: Engine | EngineSpec | None = None,
    detector: str | None = None,
    embedder: str | None = None,
    multiple: Multiple = "largest",
    workers: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> ThresholdCalibration:
    """The threshold at false-accept rate ``far`` on ROOT/person/photo, and the FAR table there
    (see the module docstring).

    ``engine`` (or its spec): the pipeline measured (a gallery's, to save the result in it); else
    one of ``detector`` and ``embedder``.
    """
    far = check_rate(far, "false-accept rate")
    people = list_people(root)
    photos = np.array([len(photos) for photos in people.values()])
    _check_measurable(far, int((photos.sum() ** 2 - (photos**2).sum()) // 2))  # before any work, at most
    paths = [str(photo) for photos in people.values() for photo in photos]
    owner = {str(photo): index for index, photos in enumerate(people.values()) for photo in photos}
    measured = bulk_engine(engine, detector, embedder)
    found = one_vector_per_file(paths, engine=measured, multiple=multiple, workers=workers, progress=progress)
    vectors, labels = list(found.values()), [owner[path] for path in found]
    if len(set(labels)) < 2:
        raise ConfigError(f"{root}: faces of at least two people are needed to measure false accepts")
    matrix, labels_array = np.stack(vectors), np.array(labels)
    first, second = np.triu_indices(len(matrix), k=1)
    same = labels_array[first] == labels_array[second]
    genuine_pairs = int(same.sum())
    impostor_first, impostor_second = first[~same], second[~same]
    if len(impostor_first) > MAX_IMPOSTOR_PAIRS:
        keep = np.random.default_rng(seed).choice(len(impostor_first), MAX_IMPOSTOR_PAIRS, replace=False)
        impostor_first, impostor_second = impostor_first[keep], impostor_second[keep]
    impostor = np.einsum("ij,ij->i", matrix[impostor_first], matrix[impostor_second])
    _check_measurable(far, len(impostor))
    ordered = np.sort(impostor)[::-1]
    allowed = int(math.floor(far * len(ordered)))
    threshold = float(np.nextafter(ordered[allowed], np.inf))
    accepted = int(np.sum(impostor >= threshold))
    genuine = np.einsum("ij,ij->i", matrix[first[same]], matrix[second[same]]) if genuine_pairs else np.zeros(0)
    table = far_rows(ordered, extra=[(threshold, accepted)])
    return ThresholdCalibration(
        threshold=threshold,
        far_target=far,
        far=accepted / len(impostor),
        far_interval=wilson_interval(accepted, len(impostor)),
        frr=float(np.mean(genuine < threshold)) if genuine_pairs else float("nan"),
        impostor_pairs=int(len(impostor)),
        genuine_pairs=genuine_pairs,
        people=len(set(labels)),
        images_without_face=len(paths) - len(vectors),
        embedder=measured.embedder.space,
        far_table=table,
    )


def far_rows(
    descending: np.ndarray, *, extra: Iterable[tuple[float, int]] = (), min_beyond: int = MIN_BEYOND
) -> tuple[tuple[float, float], ...]:
    """``(threshold, far)`` rows, thresholds ascending, from impostor scores sorted high to low.

    Targets run from FAR 0.5 down to ``min_beyond / len(scores)`` in :data:`TABLE_ROWS` log steps;
    each row's threshold is the lowest score that at most that share of impostors reaches (and at
    least ``min_beyond`` do), and its FAR the share measured there. ``extra``: rows to add as
    ``(threshold, impostors at or above it)``, e.g. the one a user asked for.
    """
    total = len(descending)
    if total == 0:
        return ()
    counts: dict[float, int] = {}
    lowest = min(0.5, min_beyond / total)
    for target in np.logspace(math.log10(0.5), math.log10(lowest), TABLE_ROWS):
        allowed = min(max(int(math.floor(target * total)), min_beyond), total - 1)
        # Just above the score at position `allowed` (rounded up to 6 decimals, as rows are written).
        threshold = math.ceil(float(np.nextafter(descending[allowed], np.inf)) * 1e6) / 1e6
        counts[threshold] = int(np.searchsorted(-descending, -threshold, side="right"))  # scores >= threshold
    for threshold, accepted in extra:
        counts[float(threshold)] = accepted
    return tuple((threshold, float(f"{count / total:.4g}")) for threshold, count in sorted(counts.items()) if count)


def _check_measurable(far: float, impostor_pairs: int) -> None:
    if far * min(impostor_pairs, MAX_IMPOSTOR_PAIRS) < 3:
        raise ConfigError(
            f"{impostor_pairs:,} impostor pairs cannot measure a false-accept rate of {far:g} "
            f"(about {math.ceil(3 / far):,} are needed); add photos of more people, or ask for a higher rate"
        )
