"""Labelled folders, the identity split and the P×K sampler."""

from __future__ import annotations

import numpy as np
import pytest

from faceshot.errors import ConfigError, ImageNotFoundError
from faceshot.train.folders import find_classes, split_identities


@pytest.fixture(scope="module")
def omniglot(datasets):
    return datasets / "omniglot"


def test_a_class_is_the_folder_that_holds_the_images(omniglot):
    found = find_classes([omniglot / "images_background_small1"])
    assert "Latin/character01" in found.classes  # alphabet/character: one class at depth two
    assert len(found.paths) == len(found.labels)
    for path, label in zip(found.paths[:50], found.labels[:50]):
        assert path.parent.relative_to(omniglot / "images_background_small1").as_posix() == found.classes[label]
    both = find_classes([omniglot / "images_background_small1", omniglot / "images_background_small2"])
    assert len(both.classes) == len(found.classes) + len(find_classes([omniglot / "images_background_small2"]).classes)


def test_missing_or_empty_folders_are_refused(tmp_path):
    # The folder walker's one error for both, as for every command that reads folders.
    with pytest.raises(ImageNotFoundError, match="no such folder"):
        find_classes([tmp_path / "absent"])
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("no image")
    with pytest.raises(ImageNotFoundError, match="no folder of images"):
        find_classes([tmp_path])
    (tmp_path / "a" / "x.png").write_bytes(b"x")
    with pytest.raises(ConfigError, match="no class with at least 2"):
        find_classes([tmp_path], min_images=2)


def test_the_split_keeps_every_identity_on_one_side():
    split = split_identities(100, holdout=0.2, minimum=5, seed=3)
    sides = [set(split.train), set(split.validation), set(split.test)]
    assert sum(map(len, sides)) == 100 and set().union(*sides) == set(range(100))
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert len(split.validation) == len(split.test) == 10
    assert split == split_identities(100, holdout=0.2, minimum=5, seed=3)
    assert split != split_identities(100, holdout=0.2, minimum=5, seed=4)
    # Each held-out side gets at least `minimum` classes (the episodes' ways), however small the holdout.
    small = split_identities(30, holdout=0.05, minimum=5)
    assert len(small.validation) == len(small.test) == 5
    with pytest.raises(ConfigError, match="too few"):
        split_identities(10, minimum=5)


def test_sampler_yields_p_classes_times_k_images_of_training_classes_only():
    pytest.importorskip("torch")  # the train package's data module needs the extra
    from faceshot.train.data import PKSampler, classes_of

    labels = np.repeat(np.arange(20), [2 if c % 2 else 7 for c in range(20)])
    split = split_identities(20, holdout=0.3, minimum=3, seed=0)
    at = classes_of(labels, split.train)
    sampler = PKSampler(labels[at], classes_per_batch=4, per_class=3, seed=0)
    seen = set()
    for batch in sampler.batches(50):
        assert batch.shape == (12,)
        chosen = labels[at][batch].reshape(4, 3)
        assert (chosen == chosen[:, :1]).all() and len(set(chosen[:, 0])) == 4  # P distinct classes × K
        seen |= set(labels[at][batch].tolist())
    assert seen <= set(split.train) and not seen & set(split.validation + split.test)
    replay = PKSampler(labels[at], classes_per_batch=4, per_class=3, seed=0)
    first = PKSampler(labels[at], classes_per_batch=4, per_class=3, seed=0).batch()
    assert (replay.batch() == first).all()
    # A class with fewer than K images is drawn with repeats; one with enough, without.
    for batch in PKSampler(labels, classes_per_batch=20, per_class=3, seed=1).batches(5):
        for group in batch.reshape(20, 3):
            if labels[group[0]] % 2 == 0:
                assert len(set(group.tolist())) == 3


def test_rotations_make_new_classes_and_shift_keeps_shape():
    pytest.importorskip("torch")
    from faceshot.train.data import add_flips, add_rotations, shift

    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
    turned, labels = add_rotations(images, np.array([0, 1]))
    assert turned.shape == (8, 4, 4, 1) and labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert (turned[2] == np.rot90(images[0])).all()
    mirrored, labels = add_flips(images, np.array([0, 1]))
    assert labels.tolist() == [0, 1, 2, 3] and (mirrored[3] == images[1][:, ::-1]).all()
    moved = shift(images, np.random.default_rng(0), pixels=1)
    assert moved.shape == images.shape and moved.dtype == np.uint8
    assert (shift(images, np.random.default_rng(0), pixels=0) == images).all()
