"""The recipe ``faceshot train`` chooses from the data: glyphs and faces get different ones, and why."""

from __future__ import annotations

import pytest

from faceshot.errors import ConfigError
from faceshot.train.folders import find_classes
from faceshot.train.recipe import DEFAULT_MINUTES, EPOCHS, choose, profile

pytest.importorskip("torch")  # the recipe's configuration is the trainer's


@pytest.fixture(scope="module")
def omniglot(datasets):
    return profile(find_classes([datasets / "omniglot" / "images_background_small1",
                                 datasets / "omniglot" / "images_background_small2"], min_images=2))


def test_omniglot_is_seen_as_glyphs_and_gets_the_episodic_recipe(omniglot):
    assert (omniglot.classes, omniglot.images, omniglot.per_class, omniglot.side) == (292, 5840, 20, 105)
    assert omniglot.grey and omniglot.glyphs
    recipe = choose(omniglot)
    config = recipe.config
    assert (recipe.size, recipe.channels) == (28, 1)
    assert config.loss == "prototypical" and config.rotations and config.affine
    # 29 validation characters allow 20-way episodes, Lake's official shape.
    assert (config.ways, config.shots) == (20, 1)
    assert (config.classes_per_batch, config.per_class) == (32, 4)
    # The rate falls over a fixed number of epochs (a plateau rule stopped seeds early; a rate falling
    # over minutes trained a different run on a faster machine); the time limit only caps the run.
    assert config.schedule == "cosine" and config.patience == 20 and config.epochs == EPOCHS
    assert config.time_limit == DEFAULT_MINUTES * 60
    lines = recipe.lines()
    assert any(line.startswith("rotations on: a glyph turned") for line in lines)
    assert len(lines) == len({line.split(" ")[0] for line in lines})  # one line per option, each with a reason


def test_faces_are_not_turned_and_given_options_win(datasets):
    faces = profile(find_classes([datasets / "att_faces"], min_images=2))
    assert faces.grey and not faces.glyphs  # grey photos, not ink on paper
    recipe = choose(faces, given={"rotations": True, "loss": "triplet", "time_limit": 60.0, "size": 32})
    assert recipe.config.rotations and recipe.config.loss == "triplet" and recipe.size == 32
    assert recipe.config.time_limit == 60.0
    assert "rotations on: given" in recipe.lines()
    plain = choose(faces)
    assert not plain.config.rotations and plain.size == 64 and plain.channels == 1
    # 40 people: 4 validate, 4 test; episodes at least 5-way where the split allows.
    assert plain.config.ways == 5
    # Threads follow the machine: one when other work already fills the cores.
    assert choose(faces, load=9.9, cores=2).config.threads == 1
    assert choose(faces, load=0.5, cores=2).config.threads is None
    assert "threads 1: load average 2.0 on 2 cores" in choose(faces, load=2.0, cores=2).lines()[-1]
    with pytest.raises(ConfigError, match="unknown training option"):
        choose(faces, given={"rotation": True})


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    from faceshot.errors import ImageError

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(2):
            (tmp_path / name / f"{i}.png").write_bytes(b"not a png")
    with pytest.raises(ImageError, match="0.png"):
        profile(find_classes([tmp_path], min_images=2))
