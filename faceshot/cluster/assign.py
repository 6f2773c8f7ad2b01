"""Adding faces to clusters that already exist, without clustering everything again.

A new face joins the cluster with which it has the most faces scoring at least the threshold (a
tie goes to the cluster holding its single best match); with none, it joins nothing and is left to
be clustered with the other faces that joined nothing. This is one round of Chinese whispers with
the old labels frozen, so the same threshold means the same thing in both steps.
"""

from __future__ import annotations

import numpy as np

from faceshot.cluster.algorithms import Clusterer, drop_small

__all__ = ["join_clusters", "grow"]

#: New faces scored per block: memory is this many rows times the faces already clustered.
BLOCK = 1024


def join_clusters(members: np.ndarray, labels: np.ndarray, new: np.ndarray, threshold: float) -> np.ndarray:
    """The cluster label each row of ``new`` joins (-1: none), given clustered ``members`` and their ``labels``."""
    members = np.asarray(members, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    new = np.asarray(new, dtype=np.float32)
    joined = np.full(len(new), -1, dtype=np.int64)
    if len(members) == 0 or len(new) == 0:
        return joined
    for start in range(0, len(new), BLOCK):
        scores = new[start : start + BLOCK] @ members.T
        for offset, row in enumerate(scores):
            close = row >= threshold
            if not close.any():
                continue
            near_labels, near_scores = labels[close], row[close]
            candidates, votes = np.unique(near_labels, return_counts=True)
            best = np.full(len(candidates), -np.inf)
            np.maximum.at(best, np.searchsorted(candidates, near_labels), near_scores)
            # Most neighbours first, then the best single match.
            winner = max(range(len(candidates)), key=lambda k: (votes[k], best[k]))
            joined[start + offset] = candidates[winner]
    return joined


def grow(
    vectors: np.ndarray,
    labels: np.ndarray,
    new: np.ndarray,
    clusterer: Clusterer,
    threshold: float,
    min_size: int,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One incremental step: which existing cluster each new face joins, and which new clusters form.

    ``vectors``/``labels``: the faces already in the collection (label -1: unclustered). The new
    faces that join no cluster are clustered together with the unclustered old ones; each group of
    at least ``min_size`` becomes a new cluster. Returns the label each new face joins (-1: none),
    and the new clusters as arrays of indices into old and new faces together (old ones first).
    """
    labels = np.asarray(labels, dtype=np.int64)
    clustered = labels >= 0
    joined = join_clusters(np.asarray(vectors)[clustered], labels[clustered], new, threshold)
    everything = np.concatenate([np.asarray(vectors, np.float32).reshape(-1, np.asarray(new).shape[1]),
                                 np.asarray(new, np.float32)])
    loose = np.concatenate([np.flatnonzero(~clustered), len(labels) + np.flatnonzero(joined < 0)])
    if len(loose) < max(min_size, 1):
        return joined, []
    found = drop_small(clusterer.fit(everything[loose], threshold, min_size), min_size)
    return joined, [loose[found == label] for label in range(int(found.max(initial=-1)) + 1)]
