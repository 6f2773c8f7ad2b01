"""The gallery's storage on its own: SQLite as the truth, the FAISS index derived from it.

These tests store random unit vectors: they are about durability, consistency and search
restriction, not about recognising faces (tests/test_gallery.py does that with real photos).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from faceshot.errors import ConfigError, EmbedderMismatchError, GalleryError, NotFound
from faceshot.gallery.exchange import read_export, write_export
from faceshot.gallery.index import read_index_file
from faceshot.gallery.local import LocalStore, index_path
from faceshot.gallery.store import NewFace

DIM = 32
EMBEDDER = "test-random"
REPO = Path(__file__).resolve().parents[1]


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def open_store(path: Path) -> LocalStore:
    return LocalStore(path, embedder=EMBEDDER, dim=DIM)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "gallery.db"


@pytest.fixture
def filled(db: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A closed store with 20 people of 3 faces each; returns its path and everyone's vectors."""
    rng = np.random.default_rng(0)
    people = {f"person-{i:02d}": unit(rng, 3) for i in range(20)}
    store = open_store(db)
    for name, vectors in people.items():
        store.add_faces(name, [NewFace(v, sha256=f"{name}-{j}") for j, v in enumerate(vectors)], create=True)
    store.close()
    return db, people


def best(store: LocalStore, vector: np.ndarray, **options) -> str | None:
    hits = store.search(vector[None, :], 1, **options)[0]
    return hits[0].person if hits else None


def answers(store: LocalStore, people: dict[str, np.ndarray]) -> dict[str, str | None]:
    return {name: best(store, vectors[1]) for name, vectors in people.items()}


def test_each_face_is_found_by_its_own_vector(filled):
    db, people = filled
    with_store = open_store(db)
    assert answers(with_store, people) == {name: name for name in people}
    hits = with_store.search(people["person-03"][0][None, :], 5)[0]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert with_store.check().ok
    with_store.close()


def test_reopen_missing_and_corrupt_index_give_the_same_answers(filled):
    db, people = filled
    store = open_store(db)
    expected = answers(store, people)
    store.close()
    assert open_store(db).check().index_file == "ok"

    index_path(db).unlink()
    store = open_store(db)  # rebuilt from SQLite on open
    assert index_path(db).is_file() and store.check().ok
    assert answers(store, people) == expected
    store.close()

    index_path(db).write_bytes(b"garbage" * 100)
    store = open_store(db)
    assert store.check().ok  # the open replaced the garbage
    assert answers(store, people) == expected
    store.close()

    # A valid file with one byte of its payload flipped fails its checksum: check() reports it,
    # rebuild() repairs it, and so does the next open.
    store = open_store(db)
    data = bytearray(index_path(db).read_bytes())
    data[-10] ^= 0xFF
    index_path(db).write_bytes(bytes(data))
    report = store.check()
    assert not report.ok and report.index_file == "corrupt: checksum mismatch"
    assert store.rebuild().ok
    index_path(db).write_bytes(bytes(data))
    store.close()
    store = open_store(db)
    assert store.check().ok and answers(store, people) == expected
    store.close()


def test_a_stale_index_file_is_rebuilt(filled):
    db, people = filled
    store = open_store(db)
    old = index_path(db).read_bytes()
    store.delete_person("person-05")
    store.close()
    index_path(db).write_bytes(old)  # the file from before the delete: generation behind
    store = open_store(db)
    _, header = read_index_file(index_path(db))
    assert header.count == 57
    assert all(hit.person != "person-05" for hit in store.search(people["person-05"], 10)[0])
    store.close()


def test_group_search_is_restricted_inside_the_index(db):
    rng = np.random.default_rng(1)
    store = open_store(db)
    query = np.zeros(DIM, np.float32)
    query[0] = 1.0
    friend, lookalike = np.zeros(DIM, np.float32), np.zeros(DIM, np.float32)
    friend[[0, 1]] = 1.0, 0.6
    lookalike[[0, 2]] = 1.0, 0.1
    store.add_faces("friend", [NewFace(friend / np.linalg.norm(friend))], create=True, groups=["friends-of-alice"])
    store.add_faces("lookalike", [NewFace(lookalike / np.linalg.norm(lookalike))], create=True)
    for i, vector in enumerate(unit(rng, 200)):
        store.add_faces(f"stranger-{i}", [NewFace(vector)], create=True)
    assert best(store, query) == "lookalike"
    # A global top-1 filtered afterwards would be empty; the restricted search finds the friend.
    hits = store.search(query[None, :], 1, group="friends-of-alice")[0]
    assert [hit.person for hit in hits] == ["friend"]
    assert hits[0].score < store.search(query[None, :], 1)[0][0].score
    assert store.scope("friends-of-alice") == (1, 1, 1)
    with pytest.raises(NotFound, match="no-such-group"):
        store.search(query[None, :], 1, group="no-such-group")
    store.close()


def test_deleted_vectors_are_never_returned_again(filled):
    db, people = filled
    store = open_store(db)
    gone = people["person-07"]
    ids = {face.id for face in store.person("person-07").faces}
    assert store.delete_person("person-07") == 3
    for search in (store.search(gone, 60), open_store(db).search(gone, 60)):
        assert all(hit.person != "person-07" and hit.face_id not in ids for row in search for hit in row)
    index, _ = read_index_file(index_path(db))
    assert not ids & set(index.ids().tolist())
    # Ids are never given out again, so an old id cannot come back as somebody else's face.
    [added] = store.add_faces("newcomer", [NewFace(gone[0])], create=True)
    assert added.face_id > max(ids)
    with pytest.raises(NotFound, match="person-07"):
        store.person("person-07")
    store.close()


def test_remove_merge_rename_and_groups(filled):
    db, people = filled
    store = open_store(db)
    face = store.person("person-01").faces[0].id
    assert store.remove_face(face) == "person-01"
    with pytest.raises(NotFound, match=str(face)):
        store.remove_face(face)
    assert store.search(people["person-01"][0][None, :], 1)[0][0].face_id != face

    store.add_to_group("person-02", "team")
    store.add_faces("person-03", [NewFace(people["person-02"][0], sha256="person-02-0")])  # same file as 02
    assert store.merge_people("person-02", "person-03") == 2  # the shared file is kept once
    merged = store.person("person-03")
    assert len(merged.faces) == 6 and merged.groups == ("team",)
    assert not store.has_person("person-02")
    assert best(store, people["person-02"][1]) == "person-03"

    store.rename_person("person-03", "Zoë")
    assert best(store, people["person-03"][1]) == "Zoë"
    with pytest.raises(GalleryError, match="merge"):
        store.rename_person("Zoë", "person-04")
    assert store.remove_from_group("Zoë", "team") and store.groups() == []
    assert store.check().ok
    store.close()


def test_opening_with_another_embedder_is_refused(filled):
    db, _ = filled
    with pytest.raises(EmbedderMismatchError, match="test-random.*other"):
        LocalStore(db, embedder="other", dim=DIM)
    with pytest.raises(EmbedderMismatchError):
        LocalStore(db, embedder=EMBEDDER, dim=DIM + 1)
    assert LocalStore.stored_embedder(db) == EMBEDDER


def test_settings_persist_and_reserved_keys_are_protected(db):
    store = open_store(db)
    store.set_setting("identify.threshold", 0.93)
    with pytest.raises(ConfigError, match="generation"):
        store.set_setting("generation", 0)
    store.close()
    store = open_store(db)
    assert store.get_setting("identify.threshold") == 0.93
    store.set_setting("identify.threshold", None)
    assert store.get_setting("identify.threshold") is None
    store.close()


def test_export_file_round_trip(filled, tmp_path):
    db, people = filled
    store = open_store(db)
    write_export(tmp_path / "out.jsonl", store.export_people(), embedder=EMBEDDER, dim=DIM)
    copy = open_store(tmp_path / "copy.db")
    summary = copy.import_people(read_export(tmp_path / "out.jsonl", embedder=EMBEDDER, dim=DIM))
    assert (summary.people, summary.created, summary.faces) == (20, 20, 60)
    assert answers(copy, people) == answers(store, people)
    again = copy.import_people(read_export(tmp_path / "out.jsonl", embedder=EMBEDDER, dim=DIM))
    assert again.faces == 0 and again.skipped == 60
    with pytest.raises(EmbedderMismatchError):
        read_export(tmp_path / "out.jsonl", embedder="other", dim=DIM)
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(GalleryError, match="not a faceshot gallery export"):
        read_export(tmp_path / "bad.jsonl", embedder=EMBEDDER, dim=DIM)
    store.close()
    copy.close()


def test_not_a_gallery_file_is_a_clear_error(tmp_path):
    path = tmp_path / "photo.db"
    path.write_bytes(b"\xff\xd8 not a database at all" * 100)
    with pytest.raises(GalleryError, match="not a faceshot gallery"):
        open_store(path)


# A writer in another process: adds `count` faces one transaction at a time, and writes each
# face id to the `ack` file once add_faces has returned (that is, once it is committed).
WRITER = """
import sys
import numpy as np
from faceshot.gallery.local import LocalStore
from faceshot.gallery.store import NewFace

path, name, count, seed, ack = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
store = LocalStore(path, embedder="{embedder}", dim={dim})
rng = np.random.default_rng(seed)
with open(ack, "a") as out:
    for i in range(count):
        vector = rng.normal(size={dim}).astype(np.float32)
        [added] = store.add_faces(name, [NewFace(vector / np.linalg.norm(vector), sha256=f"{{name}}-{{i}}")], create=True)
        out.write(f"{{added.face_id}}\\n")
        out.flush()
""".format(embedder=EMBEDDER, dim=DIM)


def writer(db: Path, name: str, count: int, seed: int, ack: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), name, str(count), str(seed), str(ack)], env=env)


def acknowledged(ack: Path) -> set[int]:
    if not ack.exists():
        return set()
    return {int(line) for line in ack.read_text().splitlines() if line.strip()}


def test_two_processes_writing_at_once_lose_nothing(db, tmp_path):
    watcher = open_store(db)  # created first, so both writers open an existing gallery
    children = [writer(db, f"writer-{i}", 120, i, tmp_path / f"ack-{i}") for i in range(2)]
    for child in children:
        assert child.wait(timeout=120) == 0
    ids = [acknowledged(tmp_path / f"ack-{i}") for i in range(2)]
    assert [len(x) for x in ids] == [120, 120] and not ids[0] & ids[1]
    # This process wrote nothing, yet its next search sees the other processes' faces.
    rng = np.random.default_rng(0)
    first = rng.normal(size=DIM).astype(np.float32)
    assert best(watcher, first / np.linalg.norm(first)) == "writer-0"
    assert watcher.scope() == (240, 120, 2)
    watcher.close()
    store = open_store(db)
    assert {face.id for face in store.person("writer-0").faces} == ids[0]
    assert {face.id for face in store.person("writer-1").faces} == ids[1]
    report = store.check()
    assert report.ok and report.faces == report.indexed == 240
    store.close()


def test_sigkill_in_the_middle_keeps_every_acknowledged_face(db, tmp_path):
    open_store(db).close()
    ack = tmp_path / "ack"
    child = writer(db, "victim", 100_000, 7, ack)
    deadline = time.monotonic() + 60
    while len(acknowledged(ack)) < 40 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    done = acknowledged(ack)
    assert len(done) >= 40
    store = open_store(db)
    stored = {face.id for face in store.person("victim").faces}
    assert done <= stored  # every acknowledged write survived (one more may have committed unacknowledged)
    assert len(stored - done) <= 1
    report = store.check()
    assert report.ok and report.indexed == len(stored)
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()
