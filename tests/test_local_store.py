"""What only the SQLite + FAISS store has: its index snapshot file, the log it follows, migration.

The backend-neutral behaviour is in test_store_contract.py; these tests use random unit vectors.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import faceshot.gallery.vectors as vectors_module
from faceshot.errors import GalleryBusyError, GalleryError, NotFound
from faceshot.gallery.index import read_index_file
from faceshot.gallery.local import LocalStore, index_path
from faceshot.gallery.store import NewFace

from store_backends import DIM, EMBEDDER

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURE = TESTS / "fixtures" / "gallery-0.1.0.db"


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def open_store(path: Path, **options) -> LocalStore:
    return LocalStore(path, embedder=EMBEDDER, dim=DIM, **options)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "gallery.db"


@pytest.fixture
def filled(db: Path) -> dict[str, np.ndarray]:
    """20 people of 3 faces, searched once (so a snapshot exists) and closed."""
    rng = np.random.default_rng(0)
    people = {f"person-{i:02d}": unit(rng, 3) for i in range(20)}
    store = open_store(db)
    for name, vectors in people.items():
        store.add_faces(name, [NewFace(v, sha256=f"{name}-{j}") for j, v in enumerate(vectors)], create=True)
    store.search(people["person-00"][:1], 1)
    store.close()
    return people


def best(store: LocalStore, vector: np.ndarray) -> str | None:
    hits = store.search(vector[None, :], 1)[0]
    return hits[0].person if hits else None


def answers(store: LocalStore, people: dict[str, np.ndarray]) -> dict[str, str | None]:
    return {name: best(store, vectors[1]) for name, vectors in people.items()}


def test_the_index_is_opened_only_when_a_search_needs_it(db, filled):
    index_path(db).unlink()
    store = open_store(db)
    assert store.people() and store.person("person-01").faces
    assert not index_path(db).exists() and store.stats.rebuilds == 0
    assert best(store, filled["person-01"][0]) == "person-01"
    assert index_path(db).is_file() and store.stats.rebuilds == 1
    store.close()


def test_missing_and_corrupt_snapshots_give_the_same_answers(db, filled):
    expected = {name: name for name in filled}
    index_path(db).write_bytes(b"garbage" * 100)
    store = open_store(db)
    assert not store.check().ok
    assert answers(store, filled) == expected and store.stats.rebuilds == 1
    assert store.check().ok  # the search replaced the garbage
    store.close()
    # A valid file with one byte of its payload flipped fails its checksum: check() reports it,
    # rebuild() repairs it, and so does the next search.
    data = bytearray(index_path(db).read_bytes())
    data[-10] ^= 0xFF
    index_path(db).write_bytes(bytes(data))
    store = open_store(db)
    report = store.check()
    assert not report.ok and report.index_file == "corrupt: checksum mismatch"
    assert store.rebuild().ok
    index_path(db).write_bytes(bytes(data))
    store.close()
    store = open_store(db)
    assert answers(store, filled) == expected and store.check().ok
    store.close()


def test_a_write_does_not_rewrite_the_index_file(db, filled):
    store = open_store(db)
    assert best(store, filled["person-02"][0]) == "person-02"
    before = index_path(db).read_bytes()
    stamp = index_path(db).stat().st_mtime_ns
    rng = np.random.default_rng(9)
    for i, vector in enumerate(unit(rng, 30)):
        store.add_faces(f"new-{i}", [NewFace(vector)], create=True)
        assert best(store, vector) == f"new-{i}"  # the next search sees it, from the log
    store.delete_person("person-02")
    assert best(store, filled["person-02"][0]) != "person-02"
    store.close()
    assert index_path(db).read_bytes() == before and index_path(db).stat().st_mtime_ns == stamp
    # Reopening reads that snapshot and applies the 33 face rows written since: no rebuild.
    store = open_store(db)
    assert best(store, filled["person-03"][0]) == "person-03"
    assert store.stats.opened_from_file and store.stats.rebuilds == 0 and store.stats.applied == 33
    report = store.check()
    assert report.ok and "behind" in report.index_file
    store.close()


ADD_FIVE = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from store_backends import open_backend, DIM
from faceshot.gallery.store import NewFace
store = open_backend("sqlite", sys.argv[1])
rng = np.random.default_rng(11)
for i in range(5):
    v = rng.normal(size=DIM).astype(np.float32)
    store.add_faces(f"remote-{i}", [NewFace(v / np.linalg.norm(v))], create=True)
store.delete_person("person-04")
store.close()
"""


def test_another_process_write_costs_the_next_search_only_its_rows(db, filled):
    store = open_store(db)
    assert best(store, filled["person-04"][0]) == "person-04"
    applied, rebuilds = store.stats.applied, store.stats.rebuilds
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-c", ADD_FIVE, str(db), str(TESTS)], env=env, check=True, timeout=120)
    rng = np.random.default_rng(11)
    first = rng.normal(size=DIM).astype(np.float32)
    assert best(store, first / np.linalg.norm(first)) == "remote-0"
    assert best(store, filled["person-04"][0]) != "person-04"  # deleted by the other process
    assert store.stats.rebuilds == rebuilds
    assert store.stats.applied - applied == 8  # 5 faces added, 3 removed: those rows and no more
    store.close()


def test_snapshots_by_size_and_log_pruning(db, monkeypatch):
    monkeypatch.setattr(vectors_module, "SNAPSHOT_ROWS", 10)
    monkeypatch.setattr("faceshot.gallery.local.LOG_KEEP", 5)
    store = open_store(db)
    lagging = open_store(db)
    rng = np.random.default_rng(2)
    vectors = unit(rng, 40)
    store.add_faces("p0", [NewFace(vectors[0])], create=True)
    assert best(lagging, vectors[0]) == "p0"
    lagging_cursor, lagging_rebuilds = lagging.head(), lagging.stats.rebuilds
    for i in range(1, 40):
        store.add_faces(f"p{i}", [NewFace(vectors[i])], create=True)
        best(store, vectors[i])
    assert store.stats.snapshots >= 3
    _, header = read_index_file(index_path(db))
    assert header.generation > lagging_cursor
    # Rows every durable consumer has read are pruned (keeping the last few) ...
    with sqlite3.connect(db) as raw:
        first_kept = raw.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
    assert first_kept > lagging_cursor + 1
    with pytest.raises(GalleryError, match="rebuild"):
        store.changes(lagging_cursor)
    # ... and a process whose index fell behind the pruned rows rebuilds, then answers right.
    assert best(lagging, vectors[39]) == "p39" and lagging.stats.rebuilds == lagging_rebuilds + 1
    store.close()
    lagging.close()


def test_a_gallery_of_faceshot_0_1_0_is_migrated_on_open(tmp_path):
    db = tmp_path / "old.db"
    shutil.copy(FIXTURE, db)
    shutil.copy(index_path(FIXTURE), index_path(db))
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT value FROM settings WHERE key = 'schema'").fetchone()[0] == "1"
        old_vectors = raw.execute("SELECT id, embedding FROM faces ORDER BY id").fetchall()
    store = LocalStore(db, embedder="dlib-resnet", dim=128)
    assert [p.name for p in store.people()] == ["Barack Obama", "Joe Biden"]
    assert [(g.name, g.people) for g in store.groups()] == [("staff", ("Barack Obama", "Joe Biden")), ("visitors", ("Joe Biden",))]
    assert store.person("Barack Obama").faces[0].source == ".cache/test_images/obama.jpg"
    assert store.get_setting("calibration") == {"threshold": 0.92}
    biden = np.frombuffer(old_vectors[2][1], dtype="<f4")
    [hit] = store.search(biden[None, :], 1)[0]
    assert (hit.person, hit.face_id) == ("Joe Biden", 3) and hit.score == pytest.approx(1.0, abs=1e-5)
    # The index file 0.1.0 saved at its last generation is still current: no rebuild.
    assert store.stats.opened_from_file and store.stats.rebuilds == 0
    store.add_faces("Joe Biden", [NewFace(biden, sha256="another")])
    assert [(c.seq, c.op) for c in store.changes(5)] == [(6, "face_added")]  # the log continues the old counter
    store.close()
    with sqlite3.connect(db) as raw:
        settings = dict(raw.execute("SELECT key, value FROM settings").fetchall())
        assert settings["schema"] == "2" and "generation" not in settings
        assert raw.execute("SELECT id, embedding FROM faces WHERE id <= 3 ORDER BY id").fetchall() == old_vectors


def test_migration_is_one_transaction(tmp_path, monkeypatch):
    """A migration that fails half-way leaves the gallery exactly as 0.1.0 wrote it."""
    from faceshot.gallery.database import Database

    db = tmp_path / "old.db"
    shutil.copy(FIXTURE, db)
    with sqlite3.connect(db) as raw:
        before = raw.execute("SELECT key, value FROM settings ORDER BY key").fetchall()

    def fail_half_way(self, key, value):
        if key == "schema":
            raise sqlite3.OperationalError("disk I/O error (simulated half-way through the migration)")
        return original(self, key, value)

    original = Database._put
    monkeypatch.setattr(Database, "_put", fail_half_way)
    with pytest.raises(GalleryError):
        LocalStore(db, embedder="dlib-resnet", dim=128)
    monkeypatch.undo()
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT key, value FROM settings ORDER BY key").fetchall() == before
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "changes" not in tables and "cursors" not in tables
    store = LocalStore(db, embedder="dlib-resnet", dim=128)  # and the next open migrates it
    assert store.get_setting("schema") == 2
    store.close()


def test_a_sqlite_file_that_is_not_a_gallery_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "photos.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE albums (id INTEGER PRIMARY KEY, title TEXT)")
        raw.execute("INSERT INTO albums (title) VALUES ('holiday')")
    before = path.read_bytes()
    with pytest.raises(GalleryError, match="not a faceshot gallery.*albums.*untouched"):
        open_store(path)
    assert path.read_bytes() == before
    garbage = tmp_path / "photo.db"
    garbage.write_bytes(b"\xff\xd8 not a database at all" * 100)
    with pytest.raises(GalleryError, match="not a faceshot gallery"):
        open_store(garbage)


def test_busy_closed_and_missing_galleries_raise_faceshot_errors(db, filled):
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    store = open_store(db, timeout=0.2)
    try:
        with pytest.raises(GalleryBusyError, match="try again"):
            store.add_faces("late", [NewFace(unit(np.random.default_rng(1))[0])], create=True)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert not store.has_person("late")
    store.close()
    with pytest.raises(GalleryError, match="closed"):
        store.people()
    with pytest.raises(NotFound, match="no such gallery"):
        open_store(db.with_name("absent.db"), create=False)
    assert not db.with_name("absent.db").exists()
