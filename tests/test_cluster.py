"""Clustering: the algorithms on vectors, a real collection (AT&T), and the collection's life cycle."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from faceshot.cluster import Collection, cluster, create_clusterer, score_clustering
from faceshot.cluster.algorithms import drop_small, score_to_distance, similar_pairs
from faceshot.errors import ConfigError, GalleryError, ImageNotFoundError, NotFound
from faceshot.gallery import Gallery


def groups(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three tight groups of 8 unit vectors (scores ~0.99 within) and 4 loners."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(7, 64))
    labels = np.array([0] * 8 + [1] * 8 + [2] * 8 + [3, 4, 5, 6])
    vectors = centres[labels] + 0.01 * rng.normal(size=(len(labels), 64))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), labels


@pytest.mark.parametrize("name", ["chinese-whispers", "components", "dbscan", "hdbscan"])
def test_every_algorithm_finds_well_separated_people(name):
    if name in ("dbscan", "hdbscan"):
        pytest.importorskip("sklearn")
    vectors, truth = groups()
    found = drop_small(create_clusterer(name).fit(vectors, 0.9), 2)
    scores = score_clustering(np.where(truth < 3, truth, -1), found)
    assert scores.bcubed_f == 1.0 and scores.clusters == 3 and scores.unclustered == 4


def test_an_unknown_algorithm_names_the_valid_ones():
    with pytest.raises(ConfigError, match="chinese-whispers.*components.*dbscan.*hdbscan"):
        create_clusterer("kmeans")


def test_the_threshold_is_a_cosine_score_and_is_inclusive():
    a = np.array([1.0, 0.0], np.float32)
    b = np.array([0.9, math.sqrt(1 - 0.81)], np.float32)  # cosine 0.9 with a
    vectors = np.stack([a, b])
    score = float(a @ b)
    assert len(similar_pairs(vectors, score)[0]) == 1
    assert len(similar_pairs(vectors, score + 1e-4)[0]) == 0
    assert score_to_distance(0.9) == pytest.approx(float(np.linalg.norm(a - b)), abs=1e-6)
    for name in ("chinese-whispers", "components"):
        labels = create_clusterer(name).fit(vectors, score)
        assert labels[0] == labels[1]
        labels = create_clusterer(name).fit(vectors, score + 1e-4)
        assert labels[0] != labels[1]


def test_small_groups_are_dropped_and_clusters_numbered_by_size():
    assert list(drop_small(np.array([5, 5, 9, 9, 9, 2, -1]), 2)) == [1, 1, 0, 0, 0, -1, -1]
    assert list(drop_small(np.array([5, 5, 9, 9, 9]), 3)) == [-1, -1, 0, 0, 0]


@pytest.mark.slow
def test_att_faces_cluster_by_person(datasets):
    # 20 people x 10 studio photos. Measured at the defaults: 199 faces found, 20 clusters, pairwise
    # and BCubed F 1.000 (all 40 people: 388 faces, 40 clusters, 1.000). The floor leaves room for
    # another build of the detector or embedder.
    paths = sorted(p for p in (datasets / "att_faces").glob("s*/*.pgm") if int(p.parent.name[1:]) <= 20)
    result = cluster(paths, workers=2)
    faces = [f for c in result.clusters for f in c.faces] + list(result.unclustered)
    truth = [int(Path(f.source).parent.name[1:]) for f in faces]
    predicted = [-1 if f.cluster is None else f.cluster for f in faces]
    scores = score_clustering(truth, predicted)
    assert len(faces) >= 190
    assert scores.bcubed_f >= 0.95 and scores.pairwise_f >= 0.9
    assert 18 <= scores.clusters <= 24


def test_a_saved_collection_grows_then_a_named_cluster_is_identified(images, tmp_path):
    db = tmp_path / "photos.db"
    with Collection(db, workers=1) as photos:
        first = photos.add([images / "obama.jpg", images / "obama2.jpg", images / "biden.jpg"])
    assert [c.size for c in first.clusters] == [2]
    assert len(first.unclustered) == 1 and first.unclustered[0].source.endswith("biden.jpg")
    obama = first.clusters[0].id

    with Collection(db, workers=1) as photos:  # reopened: the clusters were kept
        second = photos.add([images / "obama.jpg", images / "obama3.jpg"])
        assert second.skipped == 1 and second.added == 1 and second.joined == 1
        assert photos.cluster(obama).size == 3
        with Gallery(db) as gallery:
            naming = photos.name(obama, "Barack Obama", gallery)
            assert len(naming.enrollment.added) == 3 and not naming.enrollment.rejected
            found = gallery.identify(images / "obama3.jpg")
        assert found[0].identity == "Barack Obama"
        assert photos.clustering().clusters[0].name == "Barack Obama"

        moved = photos.cluster(obama).faces[0].id
        alone = photos.split(obama, moved)
        assert alone.size == 1 and photos.cluster(obama).size == 2
        merged = photos.merge(obama, alone.id)
        assert merged.size == 3 and merged.name == "Barack Obama"
        with pytest.raises(NotFound):
            photos.cluster(alone.id)
        with pytest.raises(GalleryError):
            photos.split(obama, 10_000)


def test_bad_inputs_are_reported_and_the_rest_clustered(images, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageNotFoundError, match="no image files"):
        cluster([empty])
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "broken.jpg").write_bytes(b"not a jpeg")
    (mixed / "notes.txt").write_text("not looked at: not an image ending")
    (mixed / "obama.jpg").write_bytes((images / "obama.jpg").read_bytes())
    (mixed / "copy.jpg").write_bytes((images / "obama.jpg").read_bytes())
    result = cluster([mixed, tmp_path / "missing.jpg"], workers=1)
    assert sorted(Path(f.source).name for f in result.failed) == ["broken.jpg", "missing.jpg"]
    assert result.faces == 1 and result.skipped == 1  # the copy has the same bytes: one face, not two


def test_no_image_is_kept_unless_thumbnails_are_asked_for(images, tmp_path):
    with Collection(tmp_path / "plain.db", workers=1) as photos:
        face = photos.add([images / "obama.jpg"]).unclustered[0]
        assert photos.thumbnail(face.id) is None
    with Collection(tmp_path / "thumbs.db", keep_thumbnails=True, workers=1) as photos:
        face = photos.add([images / "obama.jpg"]).unclustered[0]
        assert photos.thumbnail(face.id)[:2] == b"\xff\xd8"  # a JPEG


def test_an_interrupted_run_goes_on_where_it_stopped(images, tmp_path, monkeypatch):
    import faceshot.cluster.collection as collection

    monkeypatch.setattr(collection, "BATCH", 1)  # commit after every photo
    photos = [images / name for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")]

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    db = tmp_path / "photos.db"
    with Collection(db, workers=1) as saved, pytest.raises(KeyboardInterrupt):
        saved.add(photos, progress=stop_after_two)
    with Collection(db, workers=1) as saved:
        result = saved.add(photos)
    assert result.skipped == 2 and result.added == 2  # the first two photos were kept, not redone
    assert [c.size for c in result.clusters] == [3] and len(result.unclustered) == 1
