"""Adding faces to clusters that already exist, without clustering everything again.

Each unclustered face (a new one, or one left alone by an earlier run) joins the cluster with
which it has the most faces scoring at least the threshold (a tie goes to the cluster holding its
single best match). The faces that join none are clustered among themselves, and each group of at
least the minimum size becomes a new cluster. Joining is one round of Chinese whispers with the
existing labels frozen, so the threshold means the same thing in both steps; clusters already
made, and the user's corrections to them, are never undone.
"""

from __future__ import annotations

import numpy as np

from faceshot.cluster.algorithms import Clusterer, drop_small

__all__ = ["join_clusters", "grow"]

#: Faces scored per block: memory is this many rows times the faces already clustered.
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
    clusterer: Clusterer,
    threshold: float,
    min_size: int,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One incremental step over a collection's faces (``labels`` -1: unclustered).

    Returns the labels after joining (unclustered faces that joined an existing cluster now carry
    its label), and the new clusters to form from the rest, as arrays of row indices.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64).copy()
    clustered = labels >= 0
    loose = np.flatnonzero(~clustered)
    joined = join_clusters(vectors[clustered], labels[clustered], vectors[loose], threshold)
    labels[loose] = joined
    rest = loose[joined < 0]
    if len(rest) < max(min_size, 1):
        return labels, []
    found = drop_small(clusterer.fit(vectors[rest], threshold, min_size), min_size)
    return labels, [rest[found == label] for label in range(int(found.max(initial=-1)) + 1)]
