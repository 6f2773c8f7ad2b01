"""Milvus as a gallery's vector engine, on the session's real standalone Milvus server.

The store contract (test_store_contract.py) runs on Milvus too; these tests cover what is Milvus's
own: writes not yet confirmed by Milvus scored exactly, group search inside Milvus, a lost
collection rebuilt, a collection of other vectors refused, compressed indexes rescored, the URL.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceshot.errors import ConfigError, NotFound
from faceshot.gallery.local import LocalStore
from faceshot.gallery.milvus import MilvusVectors, parse_url, redact
from faceshot.gallery.store import NewFace, PersonRecord
from faceshot.gallery.location import open_vectors

from store_backends import DIM, EMBEDDER, milvus_url


def unit(rng: np.random.Generator, n: int = 1, dim: int = DIM) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def milvus_store(milvus_server, tmp_path):
    """Opens LocalStores over one SQLite file with vectors in Milvus (URL options as keywords)."""
    opened: list[LocalStore] = []

    def make(embedder: str = EMBEDDER, dim: int = DIM, **options: object) -> LocalStore:
        store = LocalStore(tmp_path / "g.db", embedder=embedder, dim=dim, vectors=milvus_url(tmp_path / "g.db", **options))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def test_milvus_url_options_and_mistakes():
    options = parse_url("milvus://alice:s%3Acret@db.example:19531?collection=people&index=ivf_flat&nprobe=64&confirm_rows=0")
    assert (options.host, options.port, options.collection, options.index) == ("db.example", 19531, "people", "ivf_flat")
    assert options.search == {"nprobe": 64} and options.build == {"nlist": 1024} and options.confirm_rows == 0
    assert parse_url("milvus://127.0.0.1?collection=a").search == {"ef": 256}
    assert (options.user, options.password) == ("alice", "s:cret") and "s%3Acret" not in repr(options)
    assert redact("milvus://alice:secret@host:1?collection=x") == "milvus://alice:***@host:1?collection=x"
    for url, message in [
        ("milvus://127.0.0.1:19530", "name the collection"),
        ("milvus://127.0.0.1:19530?collection=9lives", "name the collection"),
        ("milvus://127.0.0.1:19530?collection=a&index=diskann", "unknown Milvus index 'diskann'.*hnsw"),
        ("milvus://127.0.0.1:19530?collection=a&nprobe=4", "unknown option 'nprobe' for a hnsw index"),
        ("milvus://u:secret@127.0.0.1:19530?collection=a&ef=many", "ef='many' is not a number"),
        ("milvus://127.0.0.1:19530?collection=a&confirm_rows=-1", "cannot be negative"),
    ]:
        with pytest.raises(ConfigError, match=message) as caught:
            parse_url(url)
        assert "secret" not in str(caught.value)


def test_milvus_unknown_engine_is_refused_and_leaves_the_gallery_usable(tmp_path):
    with pytest.raises(ConfigError, match="unknown vector engine 'redis'; the known ones are faiss, milvus"):
        LocalStore(tmp_path / "g.db", embedder=EMBEDDER, dim=DIM, vectors="redis://127.0.0.1:6379")
    store = LocalStore(tmp_path / "g.db", embedder=EMBEDDER, dim=DIM, vectors="faiss")  # the file was released
    store.add_faces("a", [NewFace(unit(np.random.default_rng(0))[0])], create=True)
    store.close()


def test_milvus_writes_not_yet_confirmed_are_scored_exactly(milvus_store):
    rng = np.random.default_rng(11)
    store = milvus_store(confirm_rows=10_000, confirm_seconds=3600)  # Milvus never confirms on its own here
    people = {f"p{i}": unit(rng, 2) for i in range(30)}
    for name, vectors in people.items():
        store.add_faces(name, [NewFace(v) for v in vectors], create=True)
    assert store.search(people["p3"][:1], 1)[0][0].person == "p3"  # the first search builds the collection
    engine = store._engine
    assert isinstance(engine, MilvusVectors) and engine.rebuilds == 1
    built_at = engine._confirmed
    newcomer = unit(rng)[0]
    [added] = store.add_faces("newcomer", [NewFace(newcomer)], create=True, groups=["club"])
    hits = store.search(newcomer[None, :], 3)[0]
    # Applied to Milvus but not confirmed: found anyway, with its exact score.
    assert engine._applied == store.head() > engine._confirmed == built_at
    assert (hits[0].person, hits[0].face_id) == ("newcomer", added.face_id)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [hit.person for hit in store.search(newcomer[None, :], 1, group="club")[0]] == ["newcomer"]
    # A delete takes effect at once, whatever Milvus shows yet.
    store.delete_person("p3")
    assert all(hit.person != "p3" for hit in store.search(people["p3"], 60)[0])
    # Another process that confirms: the first one's later searches need no exact scoring.
    other = milvus_store()  # confirm_rows=0: confirms at each search
    assert other.search(newcomer[None, :], 1)[0][0].person == "newcomer"
    assert other._engine._confirmed == other.head()
    store.search(newcomer[None, :], 1)
    assert engine._confirmed == store.head()
    assert store.check().ok and store.check().indexed == 60 - 2 + 1


def test_milvus_large_groups_are_searched_inside_milvus_and_follow_membership(milvus_store):
    rng = np.random.default_rng(12)
    store = milvus_store(exact_group=0)  # every group search goes to Milvus
    query = unit(rng)[0]
    near = query + 0.3 * unit(rng)[0]
    store.add_faces("insider", [NewFace(near / np.linalg.norm(near))], create=True, groups=["a", "b"])
    store.add_faces("lookalike", [NewFace(query)], create=True, groups=["c"])
    for i, vector in enumerate(unit(rng, 100)):
        store.add_faces(f"s{i}", [NewFace(vector)], create=True, groups=["a"] if i % 2 else [])
    assert store.search(query[None, :], 1)[0][0].person == "lookalike"
    assert store.search(query[None, :], 1, group="b")[0][0].person == "insider"
    assert store.search(query[None, :], 1, group=["b", "c"])[0][0].person == "lookalike"
    assert {hit.person for hit in store.search(query[None, :], 100, group="a")[0]} == {"insider"} | {
        f"s{i}" for i in range(1, 100, 2)
    }
    store.remove_from_group("insider", "b")  # the group disappears with its last member
    with pytest.raises(NotFound, match="'b'"):
        store.search(query[None, :], 1, group="b")
    store.remove_from_group("insider", "a")
    assert "insider" not in {hit.person for hit in store.search(query[None, :], 100, group="a")[0]}
    store.add_to_group("lookalike", "a")
    assert store.search(query[None, :], 1, group="a")[0][0].person == "lookalike"


def test_milvus_lost_collection_is_reported_and_rebuilt(milvus_store, milvus_server):
    from pymilvus import MilvusClient

    rng = np.random.default_rng(13)
    store = milvus_store()
    vectors = unit(rng, 40)
    for i, vector in enumerate(vectors):
        store.add_faces(f"p{i}", [NewFace(vector)], create=True)
    assert store.search(vectors[:1], 1)[0][0].person == "p0"
    report = store.check()
    assert report.ok and report.indexed == 40 and "ok" in report.index_file
    client = MilvusClient(uri=milvus_server.uri)
    client.drop_collection(store._engine.collection)
    client.close()
    assert "missing" in store.check().index_file
    assert [hits[0].person for hits in store.search(vectors, 1)] == [f"p{i}" for i in range(40)]  # exact, this once
    assert [hits[0].person for hits in store.search(vectors, 1)] == [f"p{i}" for i in range(40)]
    assert store._engine.rebuilds == 2 and store.check().indexed == 40
    assert store.rebuild().ok and store._engine.rebuilds == 3


def test_milvus_collection_of_other_vectors_is_refused(milvus_store, milvus_server, tmp_path):
    store = milvus_store()
    store.add_faces("a", [NewFace(unit(np.random.default_rng(14))[0])], create=True)
    store.search(unit(np.random.default_rng(15)), 1)
    # Another gallery (another embedder) pointed at the same collection must not drop it.
    url = milvus_url(tmp_path / "g.db")
    other = LocalStore(tmp_path / "other.db", embedder="other-embedder", dim=DIM, vectors=url)
    with pytest.raises(ConfigError, match="does not hold this gallery's vectors"):
        other.search(unit(np.random.default_rng(16)), 1)
    other.close()
    assert store.search(unit(np.random.default_rng(15)), 1)[0][0].person == "a"


def test_milvus_compressed_index_scores_are_rescored_exactly(milvus_store):
    rng = np.random.default_rng(17)
    store = milvus_store(index="ivf_sq8", nlist=16, nprobe=16)
    vectors = unit(rng, 2000)
    store.import_people(PersonRecord(f"p{i}", {}, (), None, (NewFace(v),)) for i, v in enumerate(vectors))
    store.search(vectors[:1], 1)
    store._engine.wait_indexed(timeout=120)  # sealed and indexed: Milvus returns SQ8 distances now
    probes = vectors[:20] + 0.05 * unit(rng, 20)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    for probe, hits in zip(probes, store.search(probes, 3)):
        exact = vectors @ probe
        assert hits[0].person == f"p{int(np.argmax(exact))}"
        for hit in hits:
            assert hit.score == pytest.approx(float(exact[int(hit.person[1:])]), abs=1e-5)


def test_milvus_gallery_among_friends(milvus_server, tmp_path, engine):
    from faceshot.gallery import Gallery

    dim = engine.embedder.dim
    rng = np.random.default_rng(18)
    probe = unit(rng, dim=dim)[0]
    friend = probe + 0.55 * unit(rng, dim=dim)[0]
    url = milvus_url(tmp_path / "g.db")
    with Gallery(tmp_path / "g.db", engine=engine, vectors=url) as gallery:
        store = gallery.store
        store.add_faces("friend", [NewFace(friend / np.linalg.norm(friend))], create=True)
        store.add_faces("lookalike", [NewFace(probe)], create=True)
        for i, vector in enumerate(unit(rng, 200, dim=dim)):
            store.add_faces(f"stranger-{i}", [NewFace(vector)], create=True)
        everyone = gallery.identify_embeddings(probe, threshold=0.5)[0]
        assert everyone.identity == "lookalike"
        friends = ["friend", "stranger-3", "stranger-4"]
        among = gallery.identify_embeddings(probe, threshold=0.5, among=friends)[0]
        assert among.identity == "friend" and {name for name, _ in among.candidates} <= set(friends)
        assert among.score == pytest.approx(float(probe @ (friend / np.linalg.norm(friend))), abs=1e-5)
        with pytest.raises(NotFound, match="nobody"):
            gallery.identify_embeddings(probe, among=["friend", "nobody"])
        assert isinstance(store._engine, MilvusVectors)


def test_milvus_engine_opened_by_url_follows_the_records(milvus_server, tmp_path):
    from faceshot.gallery.database import Database

    db = Database(tmp_path / "g.db", embedder=EMBEDDER, dim=DIM)
    engine = open_vectors(milvus_url(tmp_path / "g.db"), db, embedder=EMBEDDER, dim=DIM)
    assert isinstance(engine, MilvusVectors) and open_vectors("faiss", db, embedder=EMBEDDER, dim=DIM) is None
    store = LocalStore(tmp_path / "g.db", embedder=EMBEDDER, dim=DIM)  # writes through another connection
    vectors = unit(np.random.default_rng(19), 3)
    added = [store.add_faces(name, [NewFace(v)], create=True)[0].face_id for name, v in zip("abc", vectors)]
    engine.catch_up()
    assert db.cursor(engine.consumer) == db.cursor(engine.confirmer) == store.head()  # cursors live in the records
    with db.snapshot():
        scores, ids = engine.search(vectors, 2)
    assert ids[:, 0].tolist() == added and scores[:, 0] == pytest.approx([1.0] * 3, abs=1e-5)
    assert (ids[:, 1] != ids[:, 0]).all()
    store.close()
    engine.close()
    db.close()


def test_milvus_a_long_log_is_applied_in_short_transactions_or_rebuilt(milvus_store, monkeypatch):
    from faceshot.gallery import milvus as engine_module

    rng = np.random.default_rng(20)
    store = milvus_store()
    store.add_faces("first", [NewFace(unit(rng)[0])], create=True)
    store.search(unit(rng), 1)  # built; from here on the log is applied
    engine = store._engine
    monkeypatch.setattr(engine_module, "APPLY_ENTRIES", 7)
    vectors = unit(rng, 30)
    for i, vector in enumerate(vectors):
        store.add_faces(f"p{i}", [NewFace(vector)], create=True)
    cursors = []
    original = engine._apply
    monkeypatch.setattr(engine, "_apply", lambda rows: (cursors.append(rows[-1].seq), original(rows)))
    assert [hits[0].person for hits in store.search(vectors, 1)] == [f"p{i}" for i in range(30)]
    assert len(cursors) == 9 and cursors[-1] == store.head() and engine.rebuilds == 1  # 60 entries, 7 at a time
    monkeypatch.setattr(engine_module, "REBUILD_ENTRIES", 20)
    for i, vector in enumerate(unit(rng, 15)):
        store.add_faces(f"q{i}", [NewFace(vector)], create=True)
    assert store.search(vectors[:1], 1)[0][0].person == "p0" and engine.rebuilds == 2
    assert store.check().indexed == 46


def test_milvus_gallery_opened_by_url_with_a_percent_encoded_vectors_parameter(milvus_server, tmp_path):
    from urllib.parse import quote

    from faceshot.gallery.location import open_store

    url = milvus_url(tmp_path / "g.db")
    store = open_store(f"sqlite:///{tmp_path / 'g.db'}?vectors={quote(url, safe='')}", embedder=EMBEDDER, dim=DIM)
    assert isinstance(store._engine, MilvusVectors) and store._engine.collection in url
    vector = unit(np.random.default_rng(21))[0]
    store.add_faces("a", [NewFace(vector)], create=True)
    assert store.search(vector[None, :], 1)[0][0].person == "a"
    assert "milvus" in store.check().index_file.lower()
    store.close()


def test_milvus_vectors_over_postgres_records(milvus_server, postgres_server, tmp_path):
    from urllib.parse import quote

    from faceshot.gallery.location import open_store
    from store_backends import postgres_url

    url = milvus_url(tmp_path / "pg")
    store = open_store(f"{postgres_url(tmp_path / 'pg')}&vectors={quote(url, safe='')}", embedder=EMBEDDER, dim=DIM)
    assert isinstance(store._engine, MilvusVectors)
    rng = np.random.default_rng(22)
    vectors = unit(rng, 5)
    for i, vector in enumerate(vectors):
        store.add_faces(f"p{i}", [NewFace(vector)], create=True, groups=["g"] if i % 2 else [])
    assert [hits[0].person for hits in store.search(vectors, 1)] == [f"p{i}" for i in range(5)]
    store.delete_person("p1")
    assert {hit.person for hit in store.search(vectors, 5, group="g")[0]} == {"p3"}
    assert store.check().ok
    store.close()
