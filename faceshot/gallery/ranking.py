"""From neighbouring faces to a ranking of people.

A person may have several enrolled faces; identification ranks *people*. Two rules:

``max``
    a person's score is their best single face. Robust when the faces differ a lot (glasses, age,
    lighting): one good match is enough.
``mean``
    a person's score is the query against the mean of their faces, renormalised to unit length
    (a "template"). Smooths out one odd reference, at the cost of blurring genuinely different
    looks together. A store that keeps templates in an index (:mod:`faceshot.gallery.templates`)
    ranks every person in one search; otherwise (:func:`rank_mean`, a list of people given by
    name) the candidates are the people among the nearest faces.
"""

from __future__ import annotations

from typing import Callable, Literal, Mapping, Sequence

import numpy as np

from faceshot.errors import ConfigError
from faceshot.gallery.store import Hit

__all__ = ["Aggregation", "AGGREGATIONS", "MAX_NEIGHBOURS", "rank_max", "rank_mean", "template", "check_aggregation"]

Aggregation = Literal["max", "mean"]
AGGREGATIONS: tuple[str, ...] = ("max", "mean")
#: The most neighbouring faces one search asks for; beyond it, people with many faces may hide others.
MAX_NEIGHBOURS = 4096


def check_aggregation(how: str) -> Aggregation:
    if how not in AGGREGATIONS:
        raise ConfigError(f"unknown aggregation {how!r}; choose one of: {', '.join(AGGREGATIONS)}")
    return how  # type: ignore[return-value]


def rank_max(hits: Sequence[Hit]) -> list[tuple[str, float]]:
    """Each person once, scored by their best face, best first."""
    best: dict[str, float] = {}
    for hit in hits:
        if hit.score > best.get(hit.person, -np.inf):
            best[hit.person] = hit.score
    return sorted(best.items(), key=lambda item: -item[1])


def template(vectors: np.ndarray) -> np.ndarray:
    """The unit-length mean of a person's face vectors."""
    mean = np.asarray(vectors, dtype=np.float32).mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def rank_mean(
    query: np.ndarray, hits: Sequence[Hit], vectors_of: Callable[[list[str]], Mapping[str, np.ndarray]]
) -> list[tuple[str, float]]:
    """The people among ``hits``, scored against their mean template, best first.

    ``vectors_of`` fetches every face vector of the named people (not only the faces that were hit).
    """
    people = list(dict.fromkeys(hit.person for hit in hits))
    if not people:
        return []
    vectors = vectors_of(people)
    scores = {
        name: float(template(vectors[name]) @ np.asarray(query, dtype=np.float32))
        for name in people
        if len(vectors.get(name, ()))
    }
    return sorted(scores.items(), key=lambda item: -item[1])
