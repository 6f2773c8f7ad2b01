"""What the service needed from the gallery, tested on the core: a photo against an enrolled person,
identification among a list of people, stable person ids."""

from __future__ import annotations

import pytest
from PIL import Image

from faceshot.errors import ConfigError, NoFaceError, NotFound
from faceshot.gallery import Gallery


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, images):
    with Gallery(tmp_path_factory.mktemp("core") / "g.db") as gallery:
        gallery.enroll("Barack Obama", [images / "obama.jpg", images / "obama2.jpg"])
        gallery.enroll("Joe Biden", images / "biden.jpg")
        yield gallery


def test_verify_person_scores_the_photo_against_the_person(gallery, images):
    same = gallery.verify_person("barack obama", images / "obama3.jpg")
    assert same.person == "Barack Obama" and same.same and same.score >= same.threshold and same.far is not None
    other = gallery.verify_person("Joe Biden", images / "obama3.jpg", far=1e-3)
    assert not other.same and other.threshold > same.threshold  # a stricter FAR, a higher threshold
    assert gallery.verify_person("Joe Biden", images / "obama3.jpg", threshold=0.5).same
    with pytest.raises(NotFound):
        gallery.verify_person("Nobody", images / "obama3.jpg")
    with pytest.raises(NoFaceError):
        gallery.verify_person("Joe Biden", Image.new("RGB", (200, 200), (90, 90, 90)))


def test_identify_among_scores_only_those_people(gallery, images):
    (whole,) = gallery.identify(images / "obama3.jpg")
    (only_biden,) = gallery.identify(images / "obama3.jpg", among=["joe biden"])
    assert whole.identity == "Barack Obama"
    assert only_biden.identity is None and [name for name, _ in only_biden.candidates] == ["Joe Biden"]
    assert dict(only_biden.candidates)["Joe Biden"] == pytest.approx(dict(whole.candidates)["Joe Biden"], abs=1e-5)
    # Fewer faces searched: a stranger has fewer chances, so the FPIR threshold is lower.
    assert only_biden.threshold < whole.threshold
    with pytest.raises(NotFound):
        gallery.identify(images / "obama3.jpg", among=["Nobody"])
    with pytest.raises(ConfigError):
        gallery.identify(images / "obama3.jpg", among="Joe Biden")
    vector = gallery.engine.embed(images / "obama3.jpg")
    (row,) = gallery.identify_embeddings(vector, among=["Barack Obama"])
    assert row.identity == "Barack Obama"


def test_person_ids_survive_a_rename(gallery, images):
    before = gallery.person_ids(["Joe Biden", "Nobody"])
    assert set(before) == {"Joe Biden"}
    gallery.rename("Joe Biden", "Joseph Biden")
    assert gallery.person_ids(["joseph biden"]) == {"joseph biden": before["Joe Biden"]}
    gallery.rename("Joseph Biden", "Joe Biden")
