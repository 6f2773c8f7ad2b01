"""Clustering: group the faces of unlabeled photos by person, then name a group to enroll it.

:func:`cluster` is the one-call case (nothing kept); :class:`Collection` keeps the clusters in a
gallery file so that later photos join them, and names, merges and splits them. The algorithms
(:mod:`~faceshot.cluster.algorithms`) and the measures of a clustering
(:mod:`~faceshot.cluster.metrics`) can be used on any unit vectors.
"""

from faceshot.cluster.algorithms import DEFAULT_ALGORITHM, Clusterer, clusterers, create_clusterer
from faceshot.cluster.collection import DEFAULT_FAR, DEFAULT_MIN_SIZE, Collection, cluster, default_threshold
from faceshot.cluster.folders import write_folders
from faceshot.cluster.metrics import ClusterScores, bcubed, pairwise, score_clustering
from faceshot.cluster.report import contact_sheet
from faceshot.cluster.results import Cluster, ClusteredFace, Clustering, Naming

__all__ = [
    "Cluster",
    "ClusterScores",
    "ClusteredFace",
    "Clusterer",
    "Clustering",
    "Collection",
    "DEFAULT_ALGORITHM",
    "DEFAULT_FAR",
    "DEFAULT_MIN_SIZE",
    "Naming",
    "bcubed",
    "cluster",
    "clusterers",
    "contact_sheet",
    "create_clusterer",
    "default_threshold",
    "pairwise",
    "score_clustering",
    "write_folders",
]
