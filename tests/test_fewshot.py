"""N-way K-shot episodes and Lake et al.'s Omniglot runs (numpy only: no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from faceshot.errors import ConfigError
from faceshot.evaluate.fewshot import (
    Episode,
    episodes,
    evaluate_episodes,
    is_omniglot_runs,
    read_omniglot_runs,
    score_omniglot_runs,
)


def test_episodes_draw_n_ways_k_shots_without_overlap():
    labels = np.repeat(np.arange(10), 6)
    drawn = episodes(labels, ways=5, shots=2, queries=3, count=20, seed=1)
    assert len(drawn) == 20
    for episode in drawn:
        support = labels[episode.support].reshape(5, 2)
        assert (support == support[:, :1]).all() and len(set(support[:, 0])) == 5
        assert not set(episode.support) & set(episode.queries)
        # Each query's answer is the way whose support shares its label.
        assert (support[episode.answers, 0] == labels[episode.queries]).all()
    again = episodes(labels, ways=5, shots=2, queries=3, count=20, seed=1)
    assert all((a.support == b.support).all() and (a.queries == b.queries).all() for a, b in zip(drawn, again))


def test_episodes_refuse_too_few_classes():
    with pytest.raises(ConfigError, match="need 5 classes"):
        episodes(np.repeat(np.arange(4), 3), ways=5, shots=1)
    # A class with only `shots` images cannot give a query, so it does not count.
    with pytest.raises(ConfigError, match="there are 2"):
        episodes(np.array([0, 0, 1, 1, 2]), ways=3, shots=1)


def test_nearest_prototype_by_hand():
    # Two classes on the x and y axes; the query at 30° is nearer the x axis, the one at 80° the y axis.
    angle = np.radians([0, 90, 30, 80])
    vectors = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    # Support: image 0 (way 0), image 1 (way 1). Both queries belong to way 0, so the 80° one is wrong.
    episode = Episode(np.array([0, 1]), np.array([2, 3]), np.array([0, 0]))
    result = evaluate_episodes(vectors, [episode], ways=2, shots=1)
    assert result.accuracy == 0.5 and result.queries == 2 and result.ways == 2


def test_prototype_is_the_mean_of_the_shots():
    # Way 0's two shots at 0° and 60° average to 30°; way 1's two sit at 75°. A query at 50° is 20°
    # from way 0's prototype and 25° from way 1's: way 0 (though its nearest single shot is 60°).
    angle = np.radians([0, 60, 75, 75, 50])
    vectors = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    episode = Episode(np.array([0, 1, 2, 3]), np.array([4]), np.array([0]))
    assert evaluate_episodes(vectors, [episode], ways=2, shots=2).accuracy == 1.0


def test_reads_the_official_omniglot_runs(datasets):
    folder = datasets / "omniglot" / "all_runs_20way_oneshot"
    assert is_omniglot_runs(folder) and is_omniglot_runs(folder / "run01")
    assert not is_omniglot_runs(datasets / "omniglot" / "images_background_small1")
    runs = read_omniglot_runs(folder)
    assert [r.name for r in runs] == [f"run{i:02d}" for i in range(1, 21)]
    for run in runs:
        assert len(run.training) == 20 and len(run.test) == 20
        assert sorted(run.answers.tolist()) == list(range(20))  # each class is asked once
    first = runs[0]
    line = (folder / "run01" / "class_labels.txt").read_text().split()
    assert first.test[0].name == "item01.png" and first.training[first.answers[0]].name == line[1].split("/")[-1]


def test_omniglot_scoring_follows_the_answer_key(datasets):
    runs = read_omniglot_runs(datasets / "omniglot" / "all_runs_20way_oneshot")[:2]
    # An oracle that embeds each image by its true class scores 100%; one that shifts the answers scores 0%.
    truth = {p: np.eye(20)[i] for run in runs for i, p in enumerate(run.training)}
    truth |= {p: np.eye(20)[a] for run in runs for p, a in zip(run.test, run.answers)}
    perfect = score_omniglot_runs(runs, lambda paths: np.stack([truth[p] for p in paths]))
    assert perfect.accuracy == 1.0 and perfect.queries == 40 and perfect.ways == 20
    wrong = score_omniglot_runs(runs, lambda paths: np.stack([np.roll(truth[p], 1) if "test" in p.parts else truth[p] for p in paths]))
    assert wrong.accuracy == 0.0


def test_reading_a_folder_that_is_not_runs_fails_clearly(tmp_path):
    with pytest.raises(ConfigError, match="no Omniglot run"):
        read_omniglot_runs(tmp_path)
