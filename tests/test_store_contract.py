"""The store contract: what every gallery backend must do, run against each one (store_backends.py).

These tests store random unit vectors: they are about durability, consistency and search
restriction, not about recognising faces (tests/test_gallery.py does that with real photos).
What only the SQLite + FAISS backend has (its index file, migration) is in test_local_store.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from faceshot.errors import ConfigError, EmbedderMismatchError, GalleryError, NotFound
from faceshot.gallery.exchange import read_export, write_export
from faceshot.gallery.ranking import template
from faceshot.gallery.store import NewFace, Store

from store_backends import BACKENDS, DIM, EMBEDDER, SERVER_FIXTURES, open_backend

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param in SERVER_FIXTURES:  # started once per session, on first use
        request.getfixturevalue(SERVER_FIXTURES[request.param])
    return request.param


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "gallery.db"


@pytest.fixture
def open_store(backend, db):
    """Opens the backend under test at this test's location; everything opened is closed at the end."""
    opened: list[Store] = []

    def make(location: Path | None = None, **options: object) -> Store:
        store = open_backend(backend, location or db, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        try:
            store.close()
        except Exception:
            pass


@pytest.fixture
def filled(open_store, db) -> tuple[Path, dict[str, np.ndarray]]:
    """A closed store with 20 people of 3 faces each; returns its location and everyone's vectors."""
    rng = np.random.default_rng(0)
    people = {f"person-{i:02d}": unit(rng, 3) for i in range(20)}
    store = open_store()
    for name, vectors in people.items():
        store.add_faces(name, [NewFace(v, sha256=f"{name}-{j}") for j, v in enumerate(vectors)], create=True)
    store.close()
    return db, people


def best(store: Store, vector: np.ndarray, **options) -> str | None:
    hits = store.search(vector[None, :], 1, **options)[0]
    return hits[0].person if hits else None


def answers(store: Store, people: dict[str, np.ndarray]) -> dict[str, str | None]:
    return {name: best(store, vectors[1]) for name, vectors in people.items()}


def test_each_face_is_found_by_its_own_vector(filled, open_store):
    db, people = filled
    with_store = open_store()
    assert answers(with_store, people) == {name: name for name in people}
    hits = with_store.search(people["person-03"][0][None, :], 5)[0]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert with_store.check().ok
    with_store.close()


def test_reopen_gives_the_same_answers(filled, open_store):
    db, people = filled
    store = open_store()
    expected = answers(store, people)
    store.close()
    again = open_store()
    assert answers(again, people) == expected == {name: name for name in people}
    assert again.scope() == (60, 3, 20)


def test_group_search_is_restricted_inside_the_index(open_store):
    rng = np.random.default_rng(1)
    store = open_store()
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


def test_deleted_vectors_are_never_returned_again(filled, open_store):
    db, people = filled
    store = open_store()
    other = open_store()  # another connection that searched before the delete
    gone = people["person-07"]
    assert best(other, gone[0]) == "person-07"
    ids = {face.id for face in store.person("person-07").faces}
    assert store.delete_person("person-07") == 3
    for search in (store.search(gone, 60), other.search(gone, 60), open_store().search(gone, 60)):
        assert all(hit.person != "person-07" and hit.face_id not in ids for row in search for hit in row)
    # Ids are never given out again, so an old id cannot come back as somebody else's face.
    [added] = store.add_faces("newcomer", [NewFace(gone[0])], create=True)
    assert added.face_id > max(ids)
    assert best(other, gone[0]) == "newcomer"
    with pytest.raises(NotFound, match="person-07"):
        store.person("person-07")


def test_remove_merge_rename_and_groups(filled, open_store):
    db, people = filled
    store = open_store()
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


def test_opening_with_another_embedder_is_refused(filled, open_store):
    with pytest.raises(EmbedderMismatchError, match="test-random.*other"):
        open_store(embedder="other")
    with pytest.raises(EmbedderMismatchError):
        open_store(dim=DIM + 1)


def test_settings_persist_and_reserved_keys_are_protected(open_store):
    store = open_store()
    store.set_setting("identify.threshold", 0.93)
    for reserved in ("embedder", "dim", "schema"):
        with pytest.raises(ConfigError, match=reserved):
            store.set_setting(reserved, 0)
    store.close()
    store = open_store()
    assert store.get_setting("identify.threshold") == 0.93
    store.set_setting("identify.threshold", None)
    assert store.get_setting("identify.threshold") is None


def test_export_file_round_trip(filled, open_store, tmp_path):
    db, people = filled
    store = open_store()
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


def test_every_write_is_in_the_change_log_in_order(open_store):
    store = open_store()
    start = store.head()
    rng = np.random.default_rng(3)
    [a, b] = store.add_faces("a", [NewFace(v) for v in unit(rng, 2)], create=True)
    store.add_to_group("a", "team")
    store.rename_person("a", "b")
    store.remove_face(a.face_id)
    store.set_setting("identify.aggregation", "max")
    store.delete_person("b")
    changes = store.changes(start)
    assert [change.seq for change in changes] == list(range(start + 1, store.head() + 1))
    ops = [(change.op, change.face) for change in changes if change.op.startswith("face")]
    assert ops == [("face_added", a.face_id), ("face_added", b.face_id),
                   ("face_removed", a.face_id), ("face_removed", b.face_id)]
    assert {change.op for change in changes} == {"face_added", "face_removed", "person_changed", "setting_changed"}
    # A failed write leaves no trace in the log.
    head = store.head()
    with pytest.raises(NotFound):
        store.add_faces("nobody", [NewFace(unit(rng)[0])])
    assert store.head() == head and store.changes(head) == []


# A writer in another process: adds `count` faces one transaction at a time, and writes each
# face id to the `ack` file once add_faces has returned (that is, once it is committed).
WRITER = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[7])
from store_backends import open_backend, DIM
from faceshot.gallery.store import NewFace

path, name, count, seed, ack, backend = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
store = open_backend(backend, path)
rng = np.random.default_rng(seed)
with open(ack, "a") as out:
    for i in range(count):
        vector = rng.normal(size=DIM).astype(np.float32)
        [added] = store.add_faces(name, [NewFace(vector / np.linalg.norm(vector), sha256=f"{name}-{i}")], create=True)
        if i % 7 == 3:  # deletes interleaved with adds, so the log carries both kinds
            store.remove_face(added.face_id)
            continue
        out.write(f"{added.face_id}\\n")
        out.flush()
"""


def writer(backend: str, db: Path, name: str, count: int, seed: int, ack: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), name, str(count), str(seed), str(ack), backend, str(TESTS)], env=env
    )


def acknowledged(ack: Path) -> set[int]:
    if not ack.exists():
        return set()
    return {int(line) for line in ack.read_text().splitlines() if line.strip()}


def test_concurrent_writers_lose_nothing_and_a_reader_follows_the_log_without_gaps(backend, open_store, db, tmp_path):
    watcher = open_store()  # created first, so both writers open an existing gallery
    start = watcher.head()
    children = [writer(backend, db, f"writer-{i}", 120, i, tmp_path / f"ack-{i}") for i in range(2)]
    # Meanwhile this process follows the log as a consumer would: with a cursor, applying
    # entries in order. Entries must arrive without gaps and never be revised afterwards.
    cursor, held, seen = start, set(), []
    deadline = time.monotonic() + 120
    while any(child.poll() is None for child in children) and time.monotonic() < deadline:
        for change in watcher.changes(cursor):
            assert change.seq == cursor + 1, "a gap in the change log"
            cursor = change.seq
            seen.append(change)
            if change.op == "face_added":
                held.add(change.face)
            elif change.op == "face_removed":
                held.discard(change.face)
        # Every search in between sees a committed state: no face it returns is unknown to the records.
        rng = np.random.default_rng(len(seen))
        for hit in watcher.search(unit(rng), 5)[0]:
            assert hit.person.startswith("writer-")
    for child in children:
        assert child.wait(timeout=120) == 0
    for change in watcher.changes(cursor):
        assert change.seq == cursor + 1
        cursor = change.seq
        if change.op == "face_added":
            held.add(change.face)
        elif change.op == "face_removed":
            held.discard(change.face)
    ids = [acknowledged(tmp_path / f"ack-{i}") for i in range(2)]
    assert [len(x) for x in ids] == [103, 103] and not ids[0] & ids[1]
    assert held == ids[0] | ids[1]  # the log alone rebuilds the set of faces
    # This process wrote nothing, yet its next search sees the other processes' faces.
    rng = np.random.default_rng(0)
    first = rng.normal(size=DIM).astype(np.float32)
    assert best(watcher, first / np.linalg.norm(first)) == "writer-0"
    assert watcher.scope() == (206, 103, 2)
    watcher.close()
    store = open_store()
    assert {face.id for face in store.person("writer-0").faces} == ids[0]
    assert {face.id for face in store.person("writer-1").faces} == ids[1]
    report = store.check()
    assert report.faces == 206


def test_a_killed_writer_keeps_every_acknowledged_face(backend, open_store, db, tmp_path):
    open_store().close()
    ack = tmp_path / "ack"
    child = writer(backend, db, "victim", 100_000, 7, ack)
    deadline = time.monotonic() + 60
    while len(acknowledged(ack)) < 40 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    done = acknowledged(ack)
    assert len(done) >= 40
    store = open_store()
    stored = {face.id for face in store.person("victim").faces}
    assert done <= stored  # every acknowledged write survived (one more may have committed unacknowledged)
    assert len(stored - done) <= 1
    assert store.check().ok
    # The log agrees with the records, and searching finds exactly what is stored.
    hits = store.search(unit(np.random.default_rng(1)), len(stored) + 5)[0]
    assert {hit.face_id for hit in hits} == stored


def test_threads_of_one_process_share_a_store(open_store):
    store = open_store()
    rng = np.random.default_rng(5)
    vectors = unit(rng, 80)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(offset, 80, 4):
                store.add_faces(f"t{i}", [NewFace(vectors[i])], create=True)
                assert best(store, vectors[i]) == f"t{i}"
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert store.scope() == (80, 1, 80)


def test_several_groups_are_searched_as_their_union(open_store):
    store = open_store()
    rng = np.random.default_rng(8)
    a, b, c = unit(rng, 3)
    store.add_faces("in-a", [NewFace(a)], create=True, groups=["a"])
    store.add_faces("in-b", [NewFace(b)], create=True, groups=["b", "a"])
    store.add_faces("in-c", [NewFace(c)], create=True, groups=["c"])
    assert store.scope(["a", "b"]) == (2, 1, 2)  # in-b is in both and counted once
    hits = store.search(np.stack([a, b, c]), 3, group=["a", "b"])
    assert [{hit.person for hit in row} for row in hits] == [{"in-a", "in-b"}] * 3
    with pytest.raises(NotFound, match="nope"):
        store.search(a[None, :], 1, group=["a", "nope"])
    with pytest.raises(NotFound, match="empty list"):
        store.scope([])


def test_mean_search_ranks_people_by_their_template_across_writes(filled, open_store):
    """``search_people`` (``mean`` aggregation): each person scored against the unit mean of their
    faces, whether the backend keeps templates in an index or scores candidates one by one; a
    merge moves faces to their new person and a delete is never returned."""
    _, people = filled
    store = open_store()

    def exact(names: list[str], probe: np.ndarray) -> list[tuple[str, float]]:
        vectors = store.embeddings(names)
        scored = [(name, float(template(vectors[name]) @ probe)) for name in names]
        return sorted(scored, key=lambda item: -item[1])[:3]

    names = sorted(people)
    probes = np.stack([people[name][0] * 0.6 + people[name][1] * 0.4 for name in names[:6]])
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    # The best person and their score (a backend scoring candidates among the nearest faces may
    # order the far ones differently).
    for probe, found in zip(probes, store.search_people(probes, 3)):
        assert found[0][0] == exact(names, probe)[0][0]
        assert found[0][1] == pytest.approx(exact(names, probe)[0][1], abs=1e-5)
    store.merge_people(names[0], names[1])
    store.delete_person(names[2])
    left = [name for name in names if name not in names[:1] + names[2:3]]
    for probe, found in zip(probes, store.search_people(probes, 3)):
        assert found[0][0] == exact(left, probe)[0][0]
        assert found[0][1] == pytest.approx(exact(left, probe)[0][1], abs=1e-5)
        assert names[0] not in [n for n, _ in found] and names[2] not in [n for n, _ in found]
