"""PostgreSQL records (faceshot.gallery.postgres) on a real PostgreSQL 18 + pgvector server on
127.0.0.1 (conftest's ``postgres_server``): galleries opened by URL, two ``faceshot serve`` hosts
over one gallery, concurrent writers and the change log, ``among=``, ``gallery migrate``, and
passwords never shown. The store contract itself runs on PostgreSQL in test_store_contract.py."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from typer.testing import CliRunner

from faceshot.cli import app
from faceshot.errors import ConfigError, ConflictError, NotFound, UnavailableError
from faceshot.gallery import Gallery
from faceshot.gallery.local import LocalStore
from faceshot.gallery.location import open_store, parse_location, register_vectors, vector_engines
from faceshot.gallery.migrate import migrate
from faceshot.gallery.store import NewFace
from faceshot.keys import KeyStore

from store_backends import DIM, EMBEDDER

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def database(postgres_server, request) -> str:
    """A new gallery on the session's server: a schema named after the test, in one database (a
    database each costs seconds and hundreds of files); its URL, password included (it has a query
    already: ``?options=…``)."""
    from faceshot.sandbox.postgres import create_schema

    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    return create_schema(postgres_server.create_database("tests"), name)


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# -- locations ---------------------------------------------------------------------------------------


def test_postgres_locations_parse_and_never_show_the_password(postgres_server, database, caplog):
    password = postgres_server.password
    milvus = "milvus://127.0.0.1:19530"
    location = parse_location(f"{database}&vectors={quote(milvus, safe='')}&sslmode=disable")
    assert location.records == "postgresql" and location.vectors == milvus and location.vectors_scheme == "milvus"
    assert "sslmode=disable" in location.target and "vectors" not in location.target
    assert password not in str(location) and password not in repr(location) and ":***@" in str(location)
    assert parse_location(location.secret_text) == location  # handed to worker processes as it was
    assert parse_location("sqlite:///people.db").path == Path("people.db")
    assert parse_location("sqlite:////tmp/people.db").path == Path("/tmp/people.db")
    assert parse_location(Path("people.db")).path == Path("people.db")
    assert "faiss" in vector_engines()
    with pytest.raises(ValueError, match="mysql.*postgresql"):
        parse_location("mysql://u@h/db")
    with pytest.raises(ValueError, match="names no database"):
        parse_location("postgresql://u@127.0.0.1:5432")
    with pytest.raises(ValueError, match="unknown vector engine 'nope'.*faiss"):
        open_store(f"{database}&vectors=nope%3A%2F%2Fx", embedder=EMBEDDER, dim=DIM)

    # A wrong password and a server that is not there: clear errors that repeat no password.
    wrong = database.replace(quote(password, safe=""), "not-" + password)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(UnavailableError) as refused:
        LocalStore(wrong, embedder=EMBEDDER, dim=DIM)
    assert "password authentication failed" in str(refused.value) and password not in str(refused.value)
    port = database.split("@127.0.0.1:")[1].split("/")[0]
    gone = database.replace(f":{port}/", f":{int(port) + 1 if int(port) < 65535 else 1}/")
    with pytest.raises(UnavailableError, match="cannot connect"):
        Gallery(gone, create=False)
    plain = postgres_server.create_database("plain")  # a whole database: the gallery in its public schema
    store = LocalStore(plain, embedder=EMBEDDER, dim=DIM)
    assert password not in repr(store)
    store.add_faces("a", [NewFace(unit(np.random.default_rng(0), 1)[0])], create=True)
    store.close()
    assert parse_location(plain).read_settings()["embedder"] == EMBEDDER
    assert password not in caplog.text

    # The command line prints the location without its password, in errors too (exit 69: unreachable).
    result = CliRunner().invoke(app, ["people", "list", "--db", gone])
    assert result.exit_code == 69 and "***" in result.stderr and password not in result.stdout + result.stderr


def test_postgres_with_a_vector_engine_registered_by_url_scheme(database, monkeypatch):
    from faceshot.gallery import location

    monkeypatch.setitem(location._VECTOR_ENGINES, "test-engine", None)  # removed again after the test
    opened = []

    def opener(url, records, *, embedder, dim):
        opened.append((url, embedder, dim))
        raise ConfigError("test-engine opened")  # the store's records are closed again

    register_vectors("test-engine", opener)
    assert "test-engine" in vector_engines()
    with pytest.raises(ConfigError, match="test-engine opened"):
        open_store(f"{database}&vectors=test-engine%3A%2F%2Fhere", embedder=EMBEDDER, dim=DIM)
    assert opened == [("test-engine://here", EMBEDDER, DIM)]
    with pytest.raises(ConfigError, match="unknown vector engine 'nowhere'"):
        open_store(f"{database}&vectors=nowhere%3A%2F%2Fhere", embedder=EMBEDDER, dim=DIM)


# -- the change log with concurrent writers ----------------------------------------------------------

WRITER = """
import pathlib, sys, time
import numpy as np
from faceshot.gallery.local import LocalStore
from faceshot.gallery.store import NewFace
url, name, count, dim, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), pathlib.Path(sys.argv[5])
store = LocalStore(url, embedder="test-random", dim=dim, create=False)
go.with_name(go.name + "." + name).touch()  # ready; all start writing together, so they interleave
while not go.exists():
    time.sleep(0.01)
rng = np.random.default_rng(abs(hash(name)) % 1000)
for i in range(count):
    vector = rng.normal(size=dim).astype(np.float32)
    store.add_faces(name, [NewFace(vector / np.linalg.norm(vector), sha256=f"{name}-{i}")], create=True, groups=[name])
store.close()
"""


def test_postgres_concurrent_writers_keep_the_log_gapless_and_in_commit_order(database, tmp_path):
    """Four processes write at once; a reader polling the log never sees a gap, and what it has seen
    is never revised: the entries it read one poll at a time are exactly the final log."""
    watcher = LocalStore(database, embedder=EMBEDDER, dim=DIM)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    go = tmp_path / "go"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, database, f"w{i}", "60", str(DIM), str(go)], env=env)
        for i in range(4)
    ]
    started = time.monotonic()
    while len(list(tmp_path.glob("go.w*"))) < 4 and time.monotonic() - started < 120:
        assert all(w.poll() is None for w in writers), "a writer failed before starting"
        time.sleep(0.05)
    go.touch()
    seen, cursor, polls = [], 0, 0
    deadline = time.monotonic() + 120
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        for change in watcher.changes(cursor):
            assert change.seq == cursor + 1, f"a gap after {cursor}"
            cursor = change.seq
            seen.append(change)
        polls += 1
    assert all(w.wait(timeout=120) == 0 for w in writers)
    seen += watcher.changes(cursor)
    assert seen == watcher.changes(0), "entries appeared behind the reader's cursor"
    assert [c.seq for c in seen] == list(range(1, watcher.head() + 1))
    faces = [c for c in seen if c.op == "face_added"]
    assert len(faces) == 240 and polls > 1
    # Interleaved writers: the log holds several runs of each writer, not four blocks one after another.
    runs = sum(1 for a, b in zip(faces, faces[1:]) if a.person != b.person)
    assert runs > 4
    assert watcher.scope() == (240, 60, 4)
    assert {hit.person for hit in watcher.search(unit(np.random.default_rng(1), 1), 240)[0]} == {"w0", "w1", "w2", "w3"}
    watcher.close()


# -- the Gallery over PostgreSQL with the real engine ------------------------------------------------


def test_postgres_gallery_identifies_among_listed_people(database, engine, images):
    with Gallery(database, engine) as gallery:
        gallery.enroll("Barack Obama", [images / "obama.jpg", images / "obama2.jpg"], groups=["office"])
        gallery.enroll("Joe Biden", images / "biden.jpg")
        assert gallery.path is None and "***" in repr(gallery)
    with Gallery(database, engine, create=False) as gallery:  # another open: state comes from the server
        (whole,) = gallery.identify(images / "obama3.jpg")
        (only_biden,) = gallery.identify(images / "obama3.jpg", among=["joe biden"])
        (only_obama,) = gallery.identify(images / "obama3.jpg", among=["Barack Obama"])
        assert whole.identity == "Barack Obama" == only_obama.identity
        assert only_biden.identity is None and [name for name, _ in only_biden.candidates] == ["Joe Biden"]
        assert dict(only_biden.candidates)["Joe Biden"] == pytest.approx(dict(whole.candidates)["Joe Biden"], abs=1e-5)
        with pytest.raises(NotFound):
            gallery.identify(images / "obama3.jpg", among=["Nobody"])
        assert gallery.check().ok and gallery.check().indexed == 3
    # A new process has no index yet: check counts the one it builds from the records (it said "0 indexed").
    checked = CliRunner().invoke(app, ["gallery", "check", "--db", database, "--json"])
    assert checked.exit_code == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert (report["faces"], report["indexed"], report["index_generation"]) == (3, 3, report["generation"])
    rebuilt = CliRunner().invoke(app, ["gallery", "rebuild", "--db", database])
    assert rebuilt.exit_code == 0 and "rebuilt: 3 faces indexed" in rebuilt.stdout, rebuilt.output


# -- a dropped connection ------------------------------------------------------------------------------


def test_postgres_gallery_connects_again_after_the_server_drops_it(postgres_server, engine, monkeypatch):
    """The server ends the gallery's connection (``pg_terminate_backend``, as a restart does): the
    same Gallery object's next read and next write succeed on a new connection; a write whose
    transaction was cut is absent as a whole; while connecting is refused, every call is an
    UnavailableError (HTTP 503 with Retry-After), and the object works again once it is allowed."""
    import psycopg

    from faceshot.errors import http_status
    from faceshot.gallery.database import Database as Records
    from faceshot.gallery.postgres import PostgresConnection
    from faceshot.sandbox.postgres import create_schema
    from faceshot.server.problems import from_error

    url = create_schema(postgres_server.create_database("reconnect"), "t_reconnect")
    admin = psycopg.connect(postgres_server.url(), autocommit=True)  # from another database

    def drop_connections() -> None:
        ended = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'reconnect'"
        ).fetchone()[0]
        assert ended >= 1

    rng = np.random.default_rng(9)
    vectors = rng.normal(size=(4, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    try:
        with Gallery(url, engine) as gallery:
            gallery.add_embeddings("Ada", vectors[0])
            assert gallery.identify_embeddings(vectors[0], threshold=0.5)[0].identity == "Ada"

            drop_connections()  # a read, then a write, each on a connection the server has ended
            assert gallery.identify_embeddings(vectors[0], threshold=0.5)[0].identity == "Ada"
            drop_connections()
            gallery.add_embeddings("Grace", vectors[1], groups=["team"])
            assert [p.name for p in gallery.people()] == ["Ada", "Grace"]

            # Cut in the middle of a write: after the person's row, before the faces' rows.
            insert_face = Records.insert_face

            def cut_then_insert(self, *args, **kwargs):
                drop_connections()
                return insert_face(self, *args, **kwargs)

            monkeypatch.setattr(Records, "insert_face", cut_then_insert)
            head = gallery.store.head()
            with pytest.raises(UnavailableError, match="lost"):
                gallery.add_embeddings("Linus", vectors[2:4], groups=["late"])
            monkeypatch.undo()
            with pytest.raises(NotFound):  # nothing of it: no person, no group, no log rows
                gallery.person("Linus")
            assert gallery.store.head() == head and "late" not in [g.name for g in gallery.groups()]
            gallery.add_embeddings("Linus", vectors[2:4])  # and the same object writes it again, once
            assert len(gallery.person("Linus").faces) == 2

            # Cut as the COMMIT is sent: the client cannot know whether it was applied, and says so;
            # the records hold the whole write or none of it.
            execute = PostgresConnection.execute

            def cut_at_commit(self, sql, params=()):
                if sql == "COMMIT" and self.in_transaction and gallery.store._db._writing:
                    drop_connections()
                return execute(self, sql, params)

            monkeypatch.setattr(PostgresConnection, "execute", cut_at_commit)
            with pytest.raises(UnavailableError, match="may or may not have been stored"):
                gallery.add_embeddings("Ken", vectors[3], groups=["late"])
            monkeypatch.undo()
            stored = [p.faces for p in gallery.people() if p.name == "Ken"]
            assert stored in ([], [1]) and gallery.check().ok
            if stored:  # the COMMIT reached the server before the connection was cut
                gallery.delete("Ken")

            # The server refuses connections: every call is "unavailable", then works again.
            admin.execute("ALTER DATABASE reconnect WITH ALLOW_CONNECTIONS false")
            drop_connections()
            for call in (lambda: gallery.identify_embeddings(vectors[0], threshold=0.5),
                         lambda: gallery.add_embeddings("Ken", vectors[3])):
                with pytest.raises(UnavailableError) as refused:
                    call()
                assert postgres_server.password not in str(refused.value)
                answer = from_error(refused.value)
                assert http_status(refused.value) == 503 == answer.status_code and answer.headers["Retry-After"]
            admin.execute("ALTER DATABASE reconnect WITH ALLOW_CONNECTIONS true")
            assert gallery.identify_embeddings(vectors[2], threshold=0.5)[0].identity == "Linus"
            assert [p.name for p in gallery.people()] == ["Ada", "Grace", "Linus"]
            assert gallery.check().ok and gallery.check().indexed == 4
    finally:
        admin.execute("ALTER DATABASE reconnect WITH ALLOW_CONNECTIONS true")
        admin.close()


# -- two service hosts over one gallery ----------------------------------------------------------------


def test_two_postgres_serve_hosts_share_one_gallery(database, images, tmp_path, postgres_server):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from conftest import start_server, stop_server

    with KeyStore(database, create=True) as keys:
        token, _ = keys.create("admin", name="test")
    hosts = []
    try:
        for name in ("a", "b"):
            hosts.append(start_server(database, workers=1, log=tmp_path / f"{name}.log"))
        (a, url_a), (b, url_b) = hosts
        headers = {"X-API-Key": token}
        files = [("images", ("obama.jpg", (images / "obama.jpg").read_bytes(), "image/jpeg"))]
        enrolled = httpx.post(url_a + "/v1/people", data={"name": "Barack Obama"}, files=files, headers=headers, timeout=120)
        assert enrolled.status_code == 201, enrolled.text
        probe = {"image": ("obama2.jpg", (images / "obama2.jpg").read_bytes(), "image/jpeg")}
        found = httpx.post(url_b + "/v1/identify", files=probe, headers=headers, timeout=120)
        assert found.status_code == 200, found.text
        (face,) = found.json()["faces"]
        assert face["identity"] == "Barack Obama"
        # A delete through b takes effect at a's next search.
        assert httpx.delete(url_b + "/v1/people/Barack Obama", headers=headers, timeout=60).status_code in (200, 204)
        again = httpx.post(url_a + "/v1/identify", files=probe, headers=headers, timeout=120).json()["faces"]
        assert again[0]["identity"] is None
    finally:
        for process, _ in hosts:
            stop_server(process)
    for name in ("a", "b"):
        text = (tmp_path / f"{name}.log").read_text()
        assert "serving postgresql://postgres:***@127.0.0.1" in text
        assert postgres_server.password not in text


# -- migrate -------------------------------------------------------------------------------------------


class Interrupted(Exception):
    pass


def test_postgres_migrate_resumes_after_an_interruption_without_duplicates(database, tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    source = tmp_path / "source.db"
    people = {f"p{i:02d}": unit(rng, 1 + i % 3) for i in range(30)}
    store = LocalStore(source, embedder=EMBEDDER, dim=DIM)
    for i, (name, vectors) in enumerate(people.items()):
        # Half the faces without a photo hash: resuming must not rely on hashes to skip them.
        faces = [NewFace(v, sha256=f"{name}-{j}" if i % 2 else None, thumbnail=b"jpeg" if i == 3 else None)
                 for j, v in enumerate(vectors)]
        store.add_faces(name, faces, create=True, groups=["odd"] if i % 2 else [], metadata={"n": i})
    store.set_setting("identify.aggregation", "max")
    store.close()
    with KeyStore(source) as keys:
        token, _ = keys.create("recognize", groups=["odd"])

    # The source is streamed a page of people at a time: pages not aligned with batches.
    monkeypatch.setattr("faceshot.gallery.local.EXPORT_PAGE", 7)
    batches = []

    def stop_after_two(done: int, total: int) -> None:
        batches.append(done)
        if len(batches) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        migrate(source, database, batch=4, progress=stop_after_two)
    partial = LocalStore(database, embedder=EMBEDDER, dim=DIM, create=False)
    assert len(partial.people()) == 8
    partial.close()

    # The rerun, from the command line with the destination in $FACESHOT_DB's form (a URL).
    result = CliRunner().invoke(app, ["gallery", "migrate", str(source), database, "--batch", "4", "--json"])
    assert result.exit_code == 0, result.stderr
    assert '"skipped": 8' in result.stdout and '"people": 22' in result.stdout
    copy = LocalStore(database, embedder=EMBEDDER, dim=DIM, create=False)
    assert [p.name for p in copy.people()] == sorted(people)
    assert sum(p.faces for p in copy.people()) == sum(len(v) for v in people.values())
    for name, vectors in people.items():
        np.testing.assert_allclose(copy.embeddings([name])[name], vectors, atol=1e-6)
    assert copy.person("p03").metadata == {"n": 3} and copy.person("p03").groups == ("odd",)
    assert copy.thumbnail(copy.person("p03").faces[0].id) == b"jpeg"
    assert copy.get_setting("identify.aggregation") == "max"
    assert copy.get_setting("migration") == {"from": str(source), "done": True}
    hits = copy.search(people["p05"][:1], 1)[0]
    assert hits[0].person == "p05"
    copy.close()
    with KeyStore(database) as keys:
        assert keys.authenticate(token).groups == ("odd",)  # the same token works on the copy
    # Once done, a rerun copies nothing; a gallery of other people is not a destination.
    assert migrate(source, database).people == 0
    back = tmp_path / "back.db"
    monkeypatch.setenv("FACESHOT_DB", database)
    listed = CliRunner().invoke(app, ["people", "list", "--json"])
    assert listed.exit_code == 0 and "p29" in listed.stdout
    assert migrate(database, back).faces == sum(len(v) for v in people.values())
    with pytest.raises(ConflictError, match="already holds people"):
        migrate(source, back)


def test_postgres_keeps_a_collections_clusters(database):
    """The cluster tables are records like the others: the same ClusterStore code on PostgreSQL."""
    from faceshot.cluster.store import ClusterStore
    from faceshot.results import Box, Face

    store = ClusterStore(database, embedder=EMBEDDER, dim=DIM)
    vectors = unit(np.random.default_rng(6), 3)
    face = Face(Box(1, 2, 30, 40), 0.9, ((1.0, 2.0),) * 5)
    with store.transaction():
        photo = store.add_photo("sha-a", "a.jpg", 2)
        ids = [store.add_face(photo, face, v, b"jpeg" if i == 0 else None) for i, v in enumerate(vectors[:2])]
        empty = store.add_photo("sha-b", "b.jpg", 0)
        cluster = store.new_cluster()
        store.assign(ids, cluster)
        store.set_name(cluster, "Ada")
    assert empty != photo and store.photo_counts() == (2, 1)
    assert store.known_photos(["sha-a", "sha-c"]) == {"sha-a"}
    assert store.cluster_names() == {cluster: "Ada"} and store.thumbnail(ids[0]) == b"jpeg"
    (first, second) = store.faces(cluster=cluster)
    np.testing.assert_allclose(first.embedding, vectors[0], atol=1e-7)
    assert first.face.box == face.box and second.cluster == cluster
    store.close()


def test_postgres_collection_clustered_and_listed_from_the_command_line(database, images, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"):
        (folder / name).write_bytes((images / name).read_bytes())
    ran = CliRunner().invoke(app, ["cluster", str(folder), "--db", database, "--workers", "1"])
    assert ran.exit_code == 0, ran.stderr
    listed = CliRunner().invoke(app, ["cluster", "list", "--db", database, "--json"])
    assert listed.exit_code == 0, listed.stderr
    (cluster,) = json.loads(listed.stdout)["clusters"]  # the three photos of Obama; Biden alone stays out
    assert cluster["size"] == 3 and {Path(face["image"]).name for face in cluster["faces"]} == {
        "obama.jpg", "obama2.jpg", "obama3.jpg"}


def test_postgres_location_mistakes_are_config_errors_before_connecting_and_migrate_knows_one_file(tmp_path):
    """Found by trying it as a user: an unknown vector engine on a PostgreSQL URL is a usage error
    (exit 2), not "cannot connect" (69), and is caught before any connection; the same SQLite file
    spelled two ways is one gallery to migrate; a file that is not a gallery says so."""
    with pytest.raises(ConfigError, match="unknown vector engine 'nonsense'"):
        LocalStore("postgresql://u:secret@127.0.0.1:1/db?vectors=nonsense", embedder=EMBEDDER, dim=DIM)
    store = LocalStore(tmp_path / "g.db", embedder=EMBEDDER, dim=DIM)
    store.add_faces("a", [NewFace(np.eye(DIM, dtype=np.float32)[0])], create=True)
    store.close()
    (tmp_path / "link.db").symlink_to(tmp_path / "g.db")
    for other in (tmp_path / "link.db", f"sqlite:///{tmp_path / 'g.db'}"):
        with pytest.raises(Exception, match="the same gallery"):
            migrate(tmp_path / "g.db", other)
    (tmp_path / "text.db").write_text("hi")
    with pytest.raises(Exception, match="not a faceshot gallery"):
        migrate(tmp_path / "text.db", tmp_path / "new.db")
    assert not (tmp_path / "new.db").exists()
