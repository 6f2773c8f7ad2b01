"""The vector-level gallery API with real embeddings: add_embeddings, identify_embeddings, operating points."""

from __future__ import annotations

import numpy as np
import pytest

from faceshot.errors import ConfigError, EmbedderMismatchError, NotFound
from faceshot.gallery import Gallery
from faceshot.gallery.store import NewFace, PersonRecord
from faceshot.match import decide

OBAMA, BIDEN = "Barack Obama", "Joe Biden"


@pytest.fixture(scope="module")
def vectors(images, engine) -> dict[str, np.ndarray]:
    """The real embedding of the one face in each package-shipped photo."""
    return {name: engine.embed(images / f"{name}.jpg")[0] for name in ("obama", "obama2", "obama3", "biden")}


def test_vectors_added_as_they_are_identify_as_photos_do(images, vectors, tmp_path):
    with Gallery(tmp_path / "photos.db") as by_photo, Gallery(tmp_path / "vectors.db") as by_vector:
        by_photo.enroll(OBAMA, images / "obama.jpg")
        by_photo.enroll(BIDEN, images / "biden.jpg")
        added = by_vector.add_embeddings(OBAMA, vectors["obama"], sources=["obama.jpg"], groups=["staff"])
        assert added.created and len(added.added) == 1 and added.added[0].box is None
        by_vector.add_embeddings(BIDEN, vectors["biden"][None, :], space="dlib-resnet")
        for probe in ("obama2", "obama3", "biden"):
            [from_photo] = by_photo.identify(images / f"{probe}.jpg")
            [from_vector] = by_vector.identify_embeddings(vectors[probe])
            assert from_vector.face is None and from_photo.face is not None
            assert from_vector.identity == from_photo.identity
            assert from_vector.score == pytest.approx(from_photo.score, abs=1e-5)
            assert from_vector.threshold == from_photo.threshold
        assert by_vector.person(OBAMA).faces[0].source == "obama.jpg"
        # Several probes at once: one answer per row, in order.
        rows = by_vector.identify_embeddings(np.stack([vectors["biden"], vectors["obama2"]]), group="staff")
        assert [row.identity for row in rows] == [None, OBAMA]


def test_bad_vectors_are_refused_before_anything_is_written(vectors, tmp_path):
    with Gallery(tmp_path / "g.db") as gallery:
        good = vectors["obama"]
        for bad, reason in (
            (good[:64], "shape"),
            (good * 2, "unit length"),
            (np.full(128, np.nan, np.float32), "finite"),
            (np.zeros((2, 3, 128), np.float32), "shape"),
        ):
            with pytest.raises(ConfigError, match=reason):
                gallery.add_embeddings("x", bad)
            with pytest.raises(ValueError, match=reason):  # a ConfigError is also a ValueError
                gallery.identify_embeddings(bad)
        with pytest.raises(EmbedderMismatchError, match="arcface"):
            gallery.add_embeddings("x", good, space="arcface")
        with pytest.raises(ConfigError, match="sources"):
            gallery.add_embeddings("x", good, sources=["a", "b"])
        batch = [
            PersonRecord("a", {}, (), None, (NewFace(good, sha256="1"),)),
            PersonRecord("b", {}, (), None, (NewFace(good * 3, sha256="2"),)),
        ]
        with pytest.raises(ConfigError, match="unit length"):
            gallery.add_embeddings_batch(batch)
        assert gallery.people() == []
        with pytest.raises(ConfigError, match="top_k"):
            gallery.identify_embeddings(good, top_k=0)
        with pytest.raises(NotFound, match="nobody"):
            gallery.identify_embeddings(good, group="nobody")


def test_a_batch_is_one_transaction_and_skips_what_is_there(vectors, tmp_path):
    with Gallery(tmp_path / "g.db") as gallery:
        batch = [
            PersonRecord(OBAMA, {"team": "a"}, ("staff",), None,
                         (NewFace(vectors["obama"], sha256="o1"), NewFace(vectors["obama2"], sha256="o2"))),
            PersonRecord(BIDEN, {}, (), None, (NewFace(vectors["biden"], sha256="b1"),)),
        ]
        summary = gallery.add_embeddings_batch(batch)
        assert (summary.people, summary.created, summary.faces) == (2, 2, 3)
        again = gallery.add_embeddings_batch(batch)
        assert (again.faces, again.skipped) == (0, 3)
        [found] = gallery.identify_embeddings(vectors["obama3"], group="staff")
        assert found.identity == OBAMA


def test_results_carry_their_operating_point(images, vectors, tmp_path):
    with Gallery(tmp_path / "g.db") as gallery:
        gallery.add_embeddings(OBAMA, vectors["obama"])
        [default] = gallery.identify_embeddings(vectors["obama2"])
        assert default.threshold == gallery.operating_point(faces=1).threshold
        assert default.far is not None and 0 < default.far < 0.011
        [given] = gallery.identify(images / "obama2.jpg", threshold=0.98)
        assert given.threshold == 0.98 and given.identity is None and given.score < 0.98
        data = given.to_dict()
        assert {"threshold", "far", "fpir", "clamped", "box"} <= data.keys() and data["box"] is not None
        assert gallery.identify_embeddings(vectors["obama2"])[0].to_dict()["box"] is None


def test_the_open_set_decision_on_ranked_candidates():
    assert decide([], 0.9) == (None, None)
    assert decide([("a", 0.95), ("b", 0.93)], 0.94) == ("a", 0.95)
    assert decide([("a", 0.93)], 0.94) == (None, 0.93)
    assert decide([("a", 0.94)], 0.94) == ("a", 0.94)  # reaching the threshold is enough


def test_the_cli_prints_the_operating_point(images, tmp_path):
    import subprocess
    import sys

    db = tmp_path / "g.db"
    with Gallery(db) as gallery:
        gallery.enroll(OBAMA, images / "obama.jpg")
    shown = subprocess.run([sys.executable, "-m", "faceshot", "identify", str(images / "obama2.jpg"), "--db", str(db),
                            "--fpir", "1e-9"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "FPIR" in shown.stdout and "clamped" in shown.stdout
