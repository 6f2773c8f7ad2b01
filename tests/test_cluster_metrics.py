"""Clustering measures on labelings small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from faceshot.cluster.metrics import bcubed, pairwise, score_clustering, singletons_apart


def test_a_perfect_clustering_scores_one_whatever_the_label_names():
    scores = score_clustering([0, 0, 1, 1, 2], [7, 7, 3, 3, -1])
    assert scores.pairwise_precision == scores.pairwise_recall == scores.pairwise_f == 1.0
    assert scores.bcubed_precision == scores.bcubed_recall == scores.bcubed_f == 1.0
    assert (scores.clusters, scores.unclustered, scores.true_clusters, scores.true_singletons) == (2, 1, 2, 1)


def test_everything_in_one_cluster():
    # 6 predicted pairs of which 2 are true; each face's cluster is half its own person.
    assert pairwise([0, 0, 1, 1], [0, 0, 0, 0]) == pytest.approx((2 / 6, 1.0, 2 * (1 / 3) / (1 / 3 + 1)))
    assert bcubed([0, 0, 1, 1], [0, 0, 0, 0]) == pytest.approx((0.5, 1.0, 2 / 3))


def test_everything_left_unclustered():
    # No predicted pair: nothing wrong was put together, nothing right either.
    assert pairwise([0, 0, 1, 1], [-1, -1, -1, -1]) == (1.0, 0.0, 0.0)
    assert bcubed([0, 0, 1, 1], [-1, -1, -1, -1]) == pytest.approx((1.0, 0.5, 2 / 3))


def test_a_mixed_labeling_worked_by_hand():
    truth = [0, 0, 0, 1, 1, 2]  # a b c | d e | f
    predicted = [0, 0, 1, 1, 1, -1]  # a b | c d e | f alone
    # Predicted pairs ab, cd, ce, de: ab and de are true (2 of 4). True pairs ab, ac, bc, de: 2 of 4 found.
    assert pairwise(truth, predicted) == pytest.approx((0.5, 0.5, 0.5))
    # Per face, precision: a 1, b 1, c 1/3, d 2/3, e 2/3, f 1; recall: a 2/3, b 2/3, c 1/3, d 1, e 1, f 1.
    assert bcubed(truth, predicted) == pytest.approx((14 / 18, 14 / 18, 14 / 18))
    scores = score_clustering(truth, predicted)
    assert (scores.clusters, scores.unclustered, scores.items) == (2, 1, 6)


def test_unclustered_faces_are_each_alone_not_one_group():
    assert list(singletons_apart([3, -1, 3, -1])) == [3, 4, 3, 5]
    # Two faces of one person both left unclustered are not "together".
    assert pairwise([0, 0], [-1, -1])[1] == 0.0


def test_lengths_must_agree():
    with pytest.raises(ValueError):
        pairwise(np.zeros(3, int), np.zeros(4, int))
