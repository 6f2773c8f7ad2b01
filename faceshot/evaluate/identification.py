"""Open-set identification measured the way face-recognition evaluations do (ISO/IEC 19795, NIST FRVT).

A *mated* probe shows someone enrolled; a *non-mated* probe shows a stranger. For a threshold t:
- FPIR (false-positive identification rate): the share of non-mated probes whose best candidate
  scores at least t, i.e. strangers named as someone;
- FNIR (false-negative identification rate): the share of mated probes that are not named
  correctly: their own person is not the best candidate, or scores below t.
The rank-k identification rate ignores the threshold: the share of mated probes whose person is
among the k best candidates.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np

__all__ = ["Ranking", "rank_people", "OpenSetResult", "open_set"]

Aggregation = Literal["max", "mean"]


@dataclass(frozen=True)
class Ranking:
    """For each probe, every enrolled person's score, best first."""

    people: np.ndarray  # (probes, people) person indices, best first
    scores: np.ndarray  # (probes, people) their scores


def rank_people(
    enrolled: np.ndarray, owners: np.ndarray, probes: np.ndarray, *, aggregation: Aggregation = "max"
) -> Ranking:
    """Score every probe against every enrolled person.

    ``enrolled``: (faces, dim) unit vectors; ``owners``: the person index (0..P-1) of each face.
    ``max``: a person's score is their best face's; ``mean``: the score of their mean template
    (renormalised), as faceshot's gallery computes them.
    """
    owners = np.asarray(owners)
    count = int(owners.max()) + 1
    if aggregation == "mean":
        templates = np.zeros((count, enrolled.shape[1]), dtype=np.float64)
        np.add.at(templates, owners, enrolled)
        templates /= np.maximum(np.linalg.norm(templates, axis=1, keepdims=True), 1e-12)
        per_person = probes @ templates.T
    elif aggregation == "max":
        face_scores = probes @ enrolled.T
        per_person = np.full((len(probes), count), -np.inf)
        for person in range(count):
            per_person[:, person] = face_scores[:, owners == person].max(axis=1)
    else:
        from faceshot.errors import ConfigError

        raise ConfigError(f"aggregation must be 'max' or 'mean', got {aggregation!r}")
    order = np.argsort(-per_person, axis=1, kind="stable")
    return Ranking(order, np.take_along_axis(per_person, order, axis=1))


@dataclass(frozen=True)
class OpenSetResult:
    """Top-1 scores and ranks of mated and non-mated probes, from which every figure follows."""

    mated_top_score: np.ndarray  # best candidate's score, per mated probe
    mated_top_correct: np.ndarray  # is the best candidate the right person?
    mated_rank: np.ndarray  # 1-based rank of the right person (a large number when absent)
    nonmated_top_score: np.ndarray  # best candidate's score, per non-mated probe

    def rank_rate(self, k: int = 1) -> float:
        return float(np.mean(self.mated_rank <= k)) if len(self.mated_rank) else float("nan")

    def threshold_at_fpir(self, fpir: float) -> float:
        """The lowest threshold at which at most ``fpir`` of the non-mated probes are named."""
        scores = np.sort(self.nonmated_top_score)[::-1]
        allowed = int(np.floor(fpir * len(scores)))
        if allowed >= len(scores):
            return float(scores[-1])
        # Above the (allowed+1)-th highest stranger score: only `allowed` strangers reach it.
        return float(np.nextafter(scores[allowed], np.inf))

    def fpir_at(self, threshold: float) -> float:
        return float(np.mean(self.nonmated_top_score >= threshold))

    def fnir_at(self, threshold: float) -> float:
        named = self.mated_top_correct & (self.mated_top_score >= threshold)
        return float(1.0 - np.mean(named))

    def det(self, points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(thresholds, FPIR, FNIR) along the DET curve."""
        every = np.concatenate([self.nonmated_top_score, self.mated_top_score])
        thresholds = np.unique(np.quantile(every, np.linspace(0, 1, points)))
        return (
            thresholds,
            np.array([self.fpir_at(t) for t in thresholds]),
            np.array([self.fnir_at(t) for t in thresholds]),
        )

    def summary(self, fpirs: Sequence[float] = (1e-1, 1e-2, 1e-3)) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "mated_probes": int(len(self.mated_top_score)),
            "nonmated_probes": int(len(self.nonmated_top_score)),
            "rank1": round(self.rank_rate(1), 5),
            "rank5": round(self.rank_rate(5), 5),
        }
        for fpir in fpirs:
            if fpir * len(self.nonmated_top_score) < 1:
                # Too few strangers to measure a rate this low: say so rather than print a 0-stranger figure.
                figures[f"fnir_at_fpir_{fpir:g}"] = figures[f"threshold_at_fpir_{fpir:g}"] = None
                continue
            threshold = self.threshold_at_fpir(fpir)
            figures[f"fnir_at_fpir_{fpir:g}"] = round(self.fnir_at(threshold), 5)
            figures[f"threshold_at_fpir_{fpir:g}"] = round(threshold, 6)
        return figures


def open_set(ranking: Ranking, truth: np.ndarray) -> OpenSetResult:
    """Split probes by ``truth`` (the enrolled person index, or -1 for a stranger) and score them."""
    truth = np.asarray(truth)
    mated = truth >= 0
    top_people, top_scores = ranking.people[:, 0], ranking.scores[:, 0]
    matches = ranking.people[mated] == truth[mated, None]
    # A probe that could not be scored (best score -inf: no face) is found at no rank.
    findable = matches.any(axis=1) & np.isfinite(top_scores[mated])
    rank = np.where(findable, matches.argmax(axis=1) + 1, np.iinfo(np.int32).max)
    return OpenSetResult(
        mated_top_score=top_scores[mated],
        mated_top_correct=top_people[mated] == truth[mated],
        mated_rank=rank,
        nonmated_top_score=top_scores[~mated],
    )


def classifier_ranking(enrolled: np.ndarray, owners: np.ndarray, probes: np.ndarray, *, seed: int = 0) -> Ranking:
    """The "just train a classifier" baseline: logistic regression on the enrolled embeddings.

    Scores are class probabilities, so a stranger is "unknown" when no class is probable enough.
    Needs scikit-learn (``pip install 'faceshot[eval]'``).
    """
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        from faceshot.errors import ConfigError

        raise ConfigError("the classifier baseline needs scikit-learn: pip install 'faceshot[eval]'") from None
    model = LogisticRegression(C=10.0, max_iter=2000, random_state=seed)
    with warnings.catch_warnings():
        # With one photo per person scikit-learn warns that there are many classes; that is the point.
        warnings.simplefilter("ignore", UserWarning)
        model.fit(enrolled, owners)
    probabilities = np.zeros((len(probes), int(np.max(owners)) + 1))
    probabilities[:, model.classes_] = model.predict_proba(probes)
    order = np.argsort(-probabilities, axis=1, kind="stable")
    return Ranking(order, np.take_along_axis(probabilities, order, axis=1))
