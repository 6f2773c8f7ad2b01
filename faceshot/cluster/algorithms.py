"""Clustering algorithms, chosen by name: unit vectors in, one label per vector out.

Every algorithm takes the same ``threshold``, a score on faceshot's one convention (the cosine
similarity of unit vectors, as ``verify`` uses): two faces scoring at least this much are taken to
be the same person. The density methods work on Euclidean distances; for unit vectors
``distance = sqrt(2 - 2 * score)`` exactly, so the threshold converts without loss.

``chinese-whispers`` (default; core dependencies only)
    a graph with an edge between every two faces scoring at least the threshold; each face then
    repeatedly takes the label most common among its neighbours (dlib's implementation, Biemann
    2006). Unlike connected components, one stray edge between two people does not merge them.
``components``
    connected components of the same graph: simplest, but a single false edge joins two people.
``dbscan`` / ``hdbscan`` (scikit-learn: ``pip install 'faceshot[eval]'``)
    the density methods photo apps use. DBSCAN with ``eps`` from the threshold and ``min_samples``
    faces within it to make a core face; HDBSCAN finds its own cut-offs, and the threshold then
    removes faces that resemble no other member of their cluster. Faces in no dense region are
    labelled -1.

A label below 0 means "no cluster". Which algorithm is better was measured, not assumed: see
BENCHMARKS.md ("Clustering").
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from faceshot.errors import ConfigError
from faceshot.registry import Registry

__all__ = [
    "Clusterer",
    "clusterers",
    "create_clusterer",
    "DEFAULT_ALGORITHM",
    "similar_pairs",
    "score_to_distance",
    "drop_small",
]

log = logging.getLogger(__name__)

DEFAULT_ALGORITHM = "chinese-whispers"


def score_to_distance(score: float) -> float:
    """The Euclidean distance between unit vectors whose cosine similarity is ``score``."""
    return math.sqrt(max(0.0, 2.0 - 2.0 * score))


def similar_pairs(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair ``i < j`` of rows scoring at least ``threshold``: ``(i, j, score)`` arrays.

    FAISS's exact range search: memory grows with the pairs found, not with the square of the faces.
    """
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    count = len(vectors)
    if count < 2:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    # FAISS keeps inner products strictly above the radius; step down so that ">= threshold" holds.
    limits, scores, neighbours = index.range_search(vectors, float(np.nextafter(np.float32(threshold), -np.inf)))
    rows = np.repeat(np.arange(count, dtype=np.int64), np.diff(limits.astype(np.int64)))
    keep = (rows < neighbours) & (scores >= threshold)
    return rows[keep], neighbours[keep].astype(np.int64), scores[keep]


def drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Labels renumbered 0, 1, … by decreasing cluster size; clusters under ``min_size`` become -1."""
    labels = np.asarray(labels, dtype=np.int64)
    result = np.full(labels.shape, -1, dtype=np.int64)
    if labels.size == 0:
        return result
    values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    # Largest first; ties broken by the first face in input order, so the numbering is stable.
    first = np.full(len(values), labels.size, dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(labels.size))
    order = sorted(range(len(values)), key=lambda k: (-counts[k], first[k]))
    new_id = 0
    for k in order:
        if values[k] < 0 or counts[k] < max(min_size, 1):
            continue
        result[inverse == k] = new_id
        new_id += 1
    return result


class Clusterer(ABC):
    """Groups unit vectors: faces of one person should share a label."""

    name: str

    @abstractmethod
    def fit(self, vectors: np.ndarray, threshold: float, min_size: int = 2) -> np.ndarray:
        """``(N, D)`` unit vectors → ``(N,)`` int64 labels (below 0: no cluster).

        ``min_size``: the smallest cluster the caller keeps; algorithms that form clusters by size
        (HDBSCAN) use it, the others leave the dropping of small groups to the caller.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


clusterers: Registry[Clusterer] = Registry("clustering algorithm")


def create_clusterer(name: str = DEFAULT_ALGORITHM, **options: Any) -> Clusterer:
    """Build the algorithm registered as ``name`` (unknown names raise and list the valid ones)."""
    return clusterers.create(name, **options)


@clusterers.register("chinese-whispers")
class ChineseWhispers(Clusterer):
    """Label propagation on the threshold graph (dlib). ``iterations``: passes over the faces."""

    name = "chinese-whispers"

    def __init__(self, iterations: int = 100) -> None:
        self.iterations = iterations

    def fit(self, vectors: np.ndarray, threshold: float, min_size: int = 2) -> np.ndarray:
        import dlib

        count = len(vectors)
        if count == 0:
            return np.zeros(0, np.int64)
        first, second, _ = similar_pairs(vectors, threshold)
        # A self-loop per face keeps every face in the graph, even one with no neighbour.
        edges = [(i, i) for i in range(count)]
        edges.extend(zip(first.tolist(), second.tolist()))
        # dlib seeds its own generator, so the same input always gives the same clusters.
        return np.asarray(dlib.chinese_whispers(edges), dtype=np.int64)


@clusterers.register("components")
class ConnectedComponents(Clusterer):
    """Connected components of the threshold graph (union-find)."""

    name = "components"

    def fit(self, vectors: np.ndarray, threshold: float, min_size: int = 2) -> np.ndarray:
        count = len(vectors)
        parent = list(range(count))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        first, second, _ = similar_pairs(vectors, threshold)
        for i, j in zip(first.tolist(), second.tolist()):
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
        return np.array([root(i) for i in range(count)], dtype=np.int64)


def _sklearn_cluster() -> Any:
    try:
        import sklearn.cluster
    except ImportError:
        raise ConfigError(
            "the dbscan and hdbscan algorithms need scikit-learn: pip install 'faceshot[eval]' "
            "(the default, chinese-whispers, needs nothing more)"
        ) from None
    return sklearn.cluster


@clusterers.register("dbscan")
class DBSCAN(Clusterer):
    """scikit-learn's DBSCAN; ``min_samples``: faces (itself included) within the threshold to be a core face."""

    name = "dbscan"

    def __init__(self, min_samples: int = 3) -> None:
        self.min_samples = min_samples

    def fit(self, vectors: np.ndarray, threshold: float, min_size: int = 2) -> np.ndarray:
        cluster = _sklearn_cluster()
        if len(vectors) == 0:
            return np.zeros(0, np.int64)
        # A hair above the converted distance, so that a pair exactly at the threshold is linked.
        eps = score_to_distance(threshold) * (1 + 1e-6)
        model = cluster.DBSCAN(eps=eps, min_samples=self.min_samples, metric="euclidean")
        return model.fit_predict(np.asarray(vectors, dtype=np.float64)).astype(np.int64)


@clusterers.register("hdbscan")
class HDBSCAN(Clusterer):
    """scikit-learn's HDBSCAN with ``min_cluster_size`` faces at least (default: the caller's ``min_size``).

    HDBSCAN picks each cluster's own density cut-off, so the threshold cannot be its cut; it is
    applied afterwards as a floor: a face stays in its cluster only if it scores at least the
    threshold with another member, so no face is grouped with people it does not resemble.
    (scikit-learn's own ``cluster_selection_epsilon`` failed inside scikit-learn 1.9.1 on LFW vectors.)
    """

    name = "hdbscan"

    def __init__(self, min_cluster_size: int | None = None, min_samples: int | None = None) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples

    def fit(self, vectors: np.ndarray, threshold: float, min_size: int = 2) -> np.ndarray:
        cluster = _sklearn_cluster()
        if len(vectors) < 2:
            return np.full(len(vectors), -1, np.int64)
        model = cluster.HDBSCAN(
            min_cluster_size=max(2, self.min_cluster_size or min_size), min_samples=self.min_samples,
            metric="euclidean", copy=True,
        )
        labels = model.fit_predict(np.asarray(vectors, dtype=np.float64)).astype(np.int64)
        first, second, _ = similar_pairs(vectors, threshold)
        linked = (labels[first] == labels[second]) & (labels[first] >= 0)
        keep = np.zeros(len(labels), dtype=bool)
        keep[first[linked]] = True
        keep[second[linked]] = True
        labels[~keep] = -1
        return labels
