"""Calibrate a threshold on the user's own labelled photos: the score that gives a chosen FAR.

Every pair of photos of one person is a genuine pair, every pair across two people an impostor
pair. The threshold is the score that only a fraction ``far`` of impostor pairs reach; how sure
that is depends on how many impostor pairs there were, so the measured false-accept rate comes
with a 95% Wilson interval. A rate below about 3 / (impostor pairs) cannot be measured at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from faceshot.bulk import bulk_engine, one_vector_per_file
from faceshot.engine import Engine, Multiple
from faceshot.errors import ConfigError
from faceshot.evaluate.open_set import list_people
from faceshot.spec import EngineSpec

__all__ = ["ThresholdCalibration", "calibrate", "wilson_interval"]

#: At most this many impostor pairs are scored (a random sample beyond it).
MAX_IMPOSTOR_PAIRS = 20_000_000


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
    """The threshold at false-accept rate ``far`` on ROOT/person/photo (see the module docstring).

    ``engine`` (or its spec): the pipeline measured; else one of ``detector`` and ``embedder``.
    """
    if not 0.0 < far < 1.0:
        raise ConfigError(f"a false-accept rate is a fraction between 0 and 1, got {far}")
    people = list_people(root)
    photos = np.array([len(photos) for photos in people.values()])
    _check_measurable(far, int((photos.sum() ** 2 - (photos**2).sum()) // 2))  # before any work, at most
    paths = [str(photo) for photos in people.values() for photo in photos]
    owner = {str(photo): index for index, photos in enumerate(people.values()) for photo in photos}
    found = one_vector_per_file(
        paths, engine=bulk_engine(engine, detector, embedder), multiple=multiple, workers=workers, progress=progress
    )
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
    )


def _check_measurable(far: float, impostor_pairs: int) -> None:
    if far * min(impostor_pairs, MAX_IMPOSTOR_PAIRS) < 3:
        raise ConfigError(
            f"{impostor_pairs:,} impostor pairs cannot measure a false-accept rate of {far:g} "
            f"(about {math.ceil(3 / far):,} are needed); add photos of more people, or ask for a higher rate"
        )
