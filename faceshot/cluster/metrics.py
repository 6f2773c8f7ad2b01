"""How close a clustering is to the truth: pairwise and BCubed precision, recall and F-measure.

Both compare a predicted labelling with the true one, item by item; neither needs the cluster ids
to match. A predicted label below 0 means "left unclustered": each such item counts as a cluster
of its own (a photo app shows it alone, so it can only be right about that one face).

**Pairwise**: of the pairs of items put together, the share that are the same person (precision);
of the pairs that are the same person, the share put together (recall). Pairs grow with the
square of a cluster's size, so the big clusters dominate.
**BCubed** (Bagga & Baldwin 1998; Amigó et al. 2009): for each item, the share of its predicted
cluster that is its own person (precision) and the share of its own person found in its cluster
(recall), averaged over items. Every face weighs the same, so a photo collection's many small
clusters count as much as its few big ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["ClusterScores", "score_clustering", "pairwise", "bcubed", "singletons_apart"]


@dataclass(frozen=True)
class ClusterScores:
    """Agreement of a predicted clustering with the truth (every figure between 0 and 1, higher better).

    ``clusters``: predicted groups of two or more items; ``unclustered``: items left alone.
    ``true_clusters``: true groups of two or more items; ``true_singletons``: items alone in the truth.
    """

    pairwise_precision: float
    pairwise_recall: float
    pairwise_f: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f: float
    clusters: int
    unclustered: int
    true_clusters: int
    true_singletons: int
    items: int

    def to_dict(self) -> dict[str, Any]:
        return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in self.__dict__.items()}


def singletons_apart(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Labels in which every item labelled below 0 has a label of its own (and all labels are >= 0)."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    alone = labels < 0
    start = labels.max(initial=-1) + 1
    labels[alone] = np.arange(start, start + int(alone.sum()))
    return labels


def _contingency(truth: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of (true, predicted) label pairs, and the sizes of true and predicted groups."""
    if truth.shape != predicted.shape:
        raise ValueError(f"{truth.size} true labels and {predicted.size} predicted labels")
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(predicted, return_inverse=True)
    pairs = t.astype(np.int64) * (p.max(initial=0) + 1) + p
    _, cells = np.unique(pairs, return_counts=True)
    return cells, np.bincount(t), np.bincount(p)


def _pairs(counts: np.ndarray) -> float:
    counts = counts.astype(np.float64)
    return float((counts * (counts - 1) / 2).sum())


def _f(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def pairwise(truth: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> tuple[float, float, float]:
    """Pairwise ``(precision, recall, F)``. With no pair on one side, that side's figure is 1."""
    truth, predicted = singletons_apart(truth), singletons_apart(predicted)
    cells, true_sizes, predicted_sizes = _contingency(truth, predicted)
    together, predicted_pairs, true_pairs = _pairs(cells), _pairs(predicted_sizes), _pairs(true_sizes)
    precision = together / predicted_pairs if predicted_pairs else 1.0
    recall = together / true_pairs if true_pairs else 1.0
    return precision, recall, _f(precision, recall)


def bcubed(truth: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> tuple[float, float, float]:
    """BCubed ``(precision, recall, F)``, averaged over items."""
    truth, predicted = singletons_apart(truth), singletons_apart(predicted)
    if truth.size == 0:
        return 1.0, 1.0, 1.0
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(predicted, return_inverse=True)
    key = t.astype(np.int64) * (p.max() + 1) + p
    _, cell_of_item, cell_counts = np.unique(key, return_inverse=True, return_counts=True)
    shared = cell_counts[cell_of_item].astype(np.float64)  # items sharing both my labels, me included
    precision = float((shared / np.bincount(p)[p]).mean())
    recall = float((shared / np.bincount(t)[t]).mean())
    return precision, recall, _f(precision, recall)


def score_clustering(truth: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> ClusterScores:
    """Every figure at once; ``predicted`` labels below 0 are items left unclustered."""
    truth_array = np.asarray(truth, dtype=np.int64)
    predicted_array = np.asarray(predicted, dtype=np.int64)
    pp, pr, pf = pairwise(truth_array, predicted_array)
    bp, br, bf = bcubed(truth_array, predicted_array)
    predicted_sizes = np.bincount(singletons_apart(predicted_array)) if predicted_array.size else np.zeros(0, int)
    true_sizes = np.bincount(singletons_apart(truth_array)) if truth_array.size else np.zeros(0, int)
    return ClusterScores(
        pairwise_precision=pp,
        pairwise_recall=pr,
        pairwise_f=pf,
        bcubed_precision=bp,
        bcubed_recall=br,
        bcubed_f=bf,
        clusters=int((predicted_sizes >= 2).sum()),
        unclustered=int((predicted_sizes == 1).sum()),
        true_clusters=int((true_sizes >= 2).sum()),
        true_singletons=int((true_sizes == 1).sum()),
        items=int(truth_array.size),
    )
