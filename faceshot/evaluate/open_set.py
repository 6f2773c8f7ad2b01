"""Open-set identification on a folder-per-person data set: split, embed, rank, measure.

``faceshot eval identify`` runs this: enroll K photos of each known person, hold some people out
as strangers, probe with everything else, and measure rank-k and FNIR at fixed FPIR (see
:mod:`faceshot.evaluate.identification`). A photo where no face is found is kept, never dropped:
as a probe it names nobody (a miss for a known person, a correct rejection for a stranger); as an
enrollment photo it is simply missing, and a person left with no enrolled face becomes a stranger.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from faceshot.bulk import bulk_engine, one_vector_per_file
from faceshot.engine import Engine, Multiple
from faceshot.errors import ConfigError
from faceshot.walk import by_top_folder
from faceshot.evaluate.identification import OpenSetResult, Ranking, classifier_ranking, open_set, rank_people
from faceshot.spec import EngineSpec

__all__ = ["list_people", "Split", "split_open_set", "OpenSetRun", "evaluate_open_set"]


def list_people(root: str | Path) -> dict[str, list[Path]]:
    """``{person: [photos]}`` from ROOT/person/…/photo (photos at any depth below the person's folder),
    read by :mod:`faceshot.walk`; :class:`~faceshot.errors.ImageNotFoundError` when there is none."""
    people, _ = by_top_folder(root)
    return dict(sorted(people.items()))


@dataclass(frozen=True)
class Split:
    """Who is enrolled with which photos, and the probes: (photo, person index or -1 for a stranger)."""

    names: tuple[str, ...]
    enroll: tuple[tuple[Path, int], ...]
    probes: tuple[tuple[Path, int], ...]
    strangers: tuple[str, ...]


def split_open_set(
    people: dict[str, list[Path]], *, enroll: int = 1, unknown_fraction: float = 0.3, seed: int = 0
) -> Split:
    """Enroll ``enroll`` photos of each known person; probe with their others and with every stranger's.

    A ``unknown_fraction`` of the people who have more than ``enroll`` photos is held out as
    strangers, as is everyone with ``enroll`` photos or fewer (they leave nothing to probe with).
    """
    if enroll < 1:
        raise ConfigError("--enroll must be at least 1")
    if not 0.0 <= unknown_fraction < 1.0:
        raise ConfigError("--unknown-fraction must be in [0, 1)")
    rng = random.Random(seed)
    eligible = sorted(name for name, photos in people.items() if len(photos) > enroll)
    held_out = set(rng.sample(eligible, round(unknown_fraction * len(eligible))))
    known = [name for name in eligible if name not in held_out]
    if not known:
        raise ConfigError(f"nobody has more than {enroll} photo(s) to enroll and probe with")
    strangers = sorted(set(people) - set(known))
    enrolled, probes = [], []
    for index, name in enumerate(known):
        photos = list(people[name])
        rng.shuffle(photos)
        enrolled += [(photo, index) for photo in photos[:enroll]]
        probes += [(photo, index) for photo in photos[enroll:]]
    probes += [(photo, -1) for name in strangers for photo in people[name]]
    return Split(tuple(known), tuple(enrolled), tuple(probes), tuple(strangers))


@dataclass(frozen=True)
class OpenSetRun:
    """The figures of one open-set evaluation, per method (``nearest``, and ``classifier`` if asked)."""

    results: dict[str, OpenSetResult]
    people_enrolled: int
    enrolled_faces: int
    strangers: int
    images_without_face: int
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "people_enrolled": self.people_enrolled,
            "enrolled_faces": self.enrolled_faces,
            "strangers": self.strangers,
            "images_without_face": self.images_without_face,
            "methods": {name: result.summary() for name, result in self.results.items()},
            "settings": self.settings,
        }


def evaluate_open_set(
    root: str | Path,
    *,
    enroll: int = 1,
    unknown_fraction: float = 0.3,
    seed: int = 0,
    baseline: bool = False,
    engine: Engine | EngineSpec | None = None,
    detector: str | None = None,
    embedder: str | None = None,
    multiple: Multiple = "largest",
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    vectors: dict[str, np.ndarray] | None = None,
) -> OpenSetRun:
    """Run the open-set protocol on ROOT/person/photo (see the module docstring).

    ``vectors``: embeddings already computed (``{path: vector}``, a photo without a face absent),
    to run several splits on one embedding pass; by default the photos are embedded here, with
    ``engine`` (or its spec), else an engine of ``detector`` and ``embedder``.
    """
    engine = bulk_engine(engine, detector, embedder)
    split = split_open_set(list_people(root), enroll=enroll, unknown_fraction=unknown_fraction, seed=seed)
    paths = sorted({str(path) for path, _ in split.enroll + split.probes})
    if vectors is None:
        vectors = one_vector_per_file(paths, engine=engine, multiple=multiple, workers=workers, progress=progress)

    enrolled = [(vectors[str(path)], person) for path, person in split.enroll if str(path) in vectors]
    # Renumber the people who kept at least one enrolled face; the others become strangers.
    kept = sorted({person for _, person in enrolled})
    renumber = {old: new for new, old in enumerate(kept)}
    gallery = np.stack([vector for vector, _ in enrolled])
    owners = np.array([renumber[person] for _, person in enrolled])
    truth = np.array([renumber.get(person, -1) for _, person in split.probes])
    found = np.array([str(path) in vectors for path, _ in split.probes])
    dim = gallery.shape[1]
    probes = np.stack([vectors.get(str(path), np.zeros(dim, dtype=np.float32)) for path, _ in split.probes])

    rankings: dict[str, Ranking] = {"nearest": rank_people(gallery, owners, probes)}
    if baseline:
        rankings["classifier"] = classifier_ranking(gallery, owners, probes, seed=seed)
    results = {}
    for name, ranking in rankings.items():
        # A probe without a face names nobody: its best score is below any threshold.
        scores = np.where(found[:, None], ranking.scores, -np.inf)
        results[name] = open_set(Ranking(ranking.people, scores), truth)
    return OpenSetRun(
        results=results,
        people_enrolled=len(kept),
        enrolled_faces=len(enrolled),
        strangers=len(set(split.strangers)) + len(split.names) - len(kept),
        images_without_face=sum(1 for path in paths if path not in vectors),
        settings={"root": str(root), "enroll": enroll, "unknown_fraction": unknown_fraction, "seed": seed,
                  "detector": engine.spec.detector_text, "embedder": engine.spec.embedder_text, "face choice": multiple},
    )
