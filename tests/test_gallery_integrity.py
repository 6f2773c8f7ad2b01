"""Names as people type them, and one face of one photo under one person only (real photos)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from faceshot.errors import ConfigError, ConflictError, GalleryError, NoFaceError, NotFound
from faceshot.gallery import FoundFace, Gallery
from faceshot.gallery.local import LocalStore

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gallery-0.1.0.db"


def test_names_are_normalised_and_found_however_they_are_typed(images, tmp_path):
    decomposed = unicodedata.normalize("NFD", "Zoë  Müller ")  # as a macOS folder name gives it
    with Gallery(tmp_path / "g.db") as gallery:
        result = gallery.enroll(decomposed, images / "obama.jpg")
        assert result.added
        [person] = gallery.people()
        assert person.name == "Zoë Müller" and unicodedata.is_normalized("NFC", person.name)
        for typed in ("Zoë Müller", "zoë müller", "  ZOË   MÜLLER", unicodedata.normalize("NFD", "zoë müller")):
            assert gallery.person(typed).name == "Zoë Müller"
        # Another spelling of the same name adds to the same person: the first spelling stays.
        again = gallery.enroll("ZOË MÜLLER", images / "obama2.jpg")
        assert not again.created and len(gallery.person("Zoë Müller").faces) == 2
        assert [p.name for p in gallery.people()] == ["Zoë Müller"]
        for bad in ("a/b", "   ", "tab\there\x00"):
            with pytest.raises(ConfigError):
                gallery.enroll(bad, images / "biden.jpg")
        assert len(gallery.people()) == 1
        gallery.enroll("Joe Biden", images / "biden.jpg")
        with pytest.raises(ConflictError, match="merge"):
            gallery.rename("joe biden", "zoë müller")
        gallery.rename("joe biden", "JOE BIDEN")  # another spelling of one's own name: shown as typed
        assert gallery.person("Joe Biden").name == "JOE BIDEN"


def test_old_names_that_collide_are_listed_never_merged(tmp_path):
    db = tmp_path / "old.db"
    shutil.copy(FIXTURE, db)
    with sqlite3.connect(db) as raw:  # 0.1.0 allowed names differing only in case
        raw.execute("INSERT INTO people (name, metadata, created) VALUES ('joe biden', '{}', '2026-01-01')")
    store = LocalStore(db, embedder="dlib-resnet", dim=128)
    report = store.check()
    assert any("'Joe Biden' and 'joe biden'" in problem for problem in report.problems)
    assert [p.name for p in store.people()] == ["Barack Obama", "Joe Biden", "joe biden"]
    assert len(store.person("Joe Biden").faces) == 1 and len(store.person("joe biden").faces) == 0
    with pytest.raises(GalleryError, match="could mean"):
        store.person("JOE BIDEN")
    store.close()


def test_the_same_face_of_the_same_photo_is_not_enrolled_as_two_people(images, tmp_path):
    with Gallery(tmp_path / "g.db") as gallery:
        gallery.enroll("Barack Obama", images / "obama.jpg")
        result = gallery.enroll("Someone Else", images / "obama.jpg")
        [rejected] = result.rejected
        assert rejected.error == "ConflictError" and "'Barack Obama'" in rejected.reason
        with pytest.raises(NotFound):
            gallery.person("Someone Else")
        forced = gallery.enroll("Someone Else", images / "obama.jpg", force=True)
        assert forced.added  # recorded knowingly


def test_different_faces_of_one_group_photo_may_be_different_people(images, engine, tmp_path):
    photo = images / "insightface_t1.jpg"
    image = engine.load(photo)
    faces = engine.detect(photo)[:2]
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    with Gallery(tmp_path / "g.db") as gallery:
        first = gallery.enroll_found("First", [FoundFace(image, faces[0], None, str(photo), sha)], force=True)
        second = gallery.enroll_found("Second", [FoundFace(image, faces[1], None, str(photo), sha)], force=True)
        assert first.added and second.added
        again = gallery.enroll_found("Third", [FoundFace(image, faces[0], None, str(photo), sha)])
        assert [r.error for r in again.rejected] == ["ConflictError"] and "'First'" in again.rejected[0].reason


def test_moving_a_photo_to_another_persons_folder_is_reported(images, tmp_path):
    root = tmp_path / "people"
    (root / "Barack Obama").mkdir(parents=True)
    shutil.copy(images / "obama.jpg", root / "Barack Obama" / "a.jpg")
    with Gallery(tmp_path / "g.db") as gallery:
        assert gallery.enroll_dir(root, workers=1).enrolled == 1
        (root / "Joe Biden").mkdir()
        shutil.move(root / "Barack Obama" / "a.jpg", root / "Joe Biden" / "a.jpg")
        summary = gallery.enroll_dir(root, workers=1)
        assert summary.enrolled == 0
        [failed] = summary.failed
        assert failed.error == "ConflictError" and "'Barack Obama'" in failed.reason
        assert [p.name for p in gallery.people()] == ["Barack Obama"]


def test_readers_do_not_create_galleries(tmp_path):
    missing = tmp_path / "absent.db"
    with pytest.raises(NotFound, match="no such gallery"):
        Gallery(missing, create=False)
    assert not missing.exists()


def test_a_photo_stored_sideways_says_so(images, engine, tmp_path):
    from PIL import Image

    sideways = tmp_path / "sideways.jpg"
    Image.open(images / "obama.jpg").rotate(90, expand=True).save(sideways)  # no EXIF orientation tag
    with Gallery(tmp_path / "g.db") as gallery:
        [rejected] = gallery.enroll("Barack Obama", sideways).rejected
        assert rejected.error == "NoFaceError" and "turned 90° clockwise" in rejected.reason
    with pytest.raises(NoFaceError, match="stored sideways"):
        engine.verify(sideways, images / "obama2.jpg")
    blank = np.full((300, 300, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match="at least about") as caught:
        engine.verify(blank, images / "obama2.jpg")
    assert "sideways" not in str(caught.value)


def test_a_folder_name_that_cannot_be_a_name_fails_only_its_photos(images, tmp_path):
    root = tmp_path / "people"
    for person, photo in (("bell\x07", "obama.jpg"), ("Joe Biden", "biden.jpg")):
        (root / person).mkdir(parents=True)
        shutil.copy(images / photo, root / person / photo)
    with Gallery(tmp_path / "g.db") as gallery:
        summary = gallery.enroll_dir(root, workers=1)
        assert summary.enrolled == 1 and [p.name for p in gallery.people()] == ["Joe Biden"]
        [failed] = summary.failed
        assert failed.error == "ConfigError" and "control characters" in failed.reason


def test_photos_as_data_urls_and_open_files_are_enrolled_once(images, tmp_path):
    import base64

    data = (images / "obama.jpg").read_bytes()
    url = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    with Gallery(tmp_path / "g.db") as gallery:
        first = gallery.enroll("Barack Obama", url)
        assert first.added and first.added[0].source.startswith("<data URL, image/jpeg")
        with open(images / "obama.jpg", "rb") as file:  # the same content: already enrolled
            again = gallery.enroll("Barack Obama", file)
        assert not again.added and len(again.skipped) == 1
        [rejected] = gallery.enroll("Barack Obama", "data:image/jpeg;base64,@@@").rejected
        assert rejected.error == "CorruptImageError" and "base64" in rejected.reason


def test_a_damaged_stored_vector_among_many_is_named_and_the_others_still_read(tmp_path):
    """Rescoring reads ~1,000 vectors in one decode; a vector of the wrong size must still be an
    error that says so, not a silent shift of every vector after it."""
    from faceshot.gallery.store import NewFace, PersonRecord

    vectors = np.random.default_rng(0).standard_normal((40, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.add_embeddings_batch(PersonRecord(f"p{i}", {}, (), None, (NewFace(v),)) for i, v in enumerate(vectors))
    with sqlite3.connect(path) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM faces ORDER BY id")]
        # Two damaged rows whose sizes add up to two whole vectors: the joined bytes look right.
        conn.execute("UPDATE faces SET embedding = ? WHERE id = ?", (vectors[0].tobytes()[:-4], ids[0]))
        conn.execute("UPDATE faces SET embedding = ? WHERE id = ?", (vectors[1].tobytes() + b"\0" * 4, ids[1]))
    with Gallery(path) as g:
        with pytest.raises(GalleryError, match="a stored vector has 127 values where 128 were expected"):
            g.store._db.vectors_of_faces(ids)
        found, held = g.store._db.vectors_of_faces(ids[2:])
        assert np.array_equal(found, ids[2:]) and np.array_equal(held, vectors[2:])
