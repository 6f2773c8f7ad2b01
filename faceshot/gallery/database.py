"""The gallery's source of truth: one SQLite file in WAL mode, or a PostgreSQL database.

Tables::

    people(id, name UNIQUE, metadata JSON, created)
    faces(id, person → people, embedding BLOB float32 little-endian, embedder, sha256, source,
          box JSON, quality JSON, created, thumbnail BLOB NULL)       UNIQUE(person, sha256)
    groups(id, name UNIQUE)
    memberships(person → people, grp → groups)                         many-to-many
    settings(key PRIMARY KEY, value JSON)     embedder, dim, schema, log_start, user settings
    changes(seq AUTOINCREMENT, op, face NULL, person NULL, detail NULL, at)   the change log
    cursors(consumer PRIMARY KEY, seq, updated)   how far each durable consumer of the log has read
    cluster_photos, clusters, cluster_faces       a photo collection's clusters (faceshot.cluster.store)
    api_keys(id, digest UNIQUE, role, groups JSON, name, created, revoked NULL)   the service's keys
                                                  (faceshot.keys: SHA-256 digests, never the keys)

The queries are written once for both engines; what differs (types, locks, the log's numbering,
errors) is a :class:`~faceshot.gallery.dialect.Dialect`: SQLite's in :mod:`faceshot.gallery.dialect`,
PostgreSQL's in :mod:`faceshot.gallery.postgres`, which also says how its log keeps rule 2.

Face ids come from AUTOINCREMENT (an identity on PostgreSQL), so an id is never given out twice, even after a delete: a deleted
face's id can never come back in a search as somebody else's face.

Every write runs in ``BEGIN IMMEDIATE`` … ``COMMIT`` (:meth:`Database.transaction`), takes the
write lock up front and, when another process holds it, waits up to ``timeout`` seconds rather
than failing. ``synchronous=FULL``: a commit has reached the disk when the method that made it
returns.

**The change log** (the consistency contract, see :mod:`faceshot.gallery.records`): every write
appends its rows to ``changes`` in the same transaction. ``BEGIN IMMEDIATE`` serialises writers
and AUTOINCREMENT never reuses a number, and a rolled-back transaction takes its numbers back with
it, so the log has no gaps and its order is the commit order. Rows up to ``log_start`` may have
been pruned once every durable consumer had read them; a consumer whose cursor is older rebuilds
from the tables. Schema 1 galleries (faceshot 0.1.0) gain the log on open, in one transaction,
starting after their old ``generation`` counter.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

import numpy as np

from faceshot.errors import ConfigError, ConflictError, EmbedderMismatchError, GalleryError, NotFound
from faceshot.gallery.dialect import Dialect, SQLiteDialect, dialect_for
from faceshot.gallery.location import Location, parse_location
from faceshot.gallery.names import name_key, normalise_name

__all__ = [
    "Database", "Change", "read_settings", "SCHEMA_VERSION", "KEY_SCHEMA", "RESERVED_SETTINGS", "now", "to_blob",
    "from_blob",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
#: Settings the store owns; users cannot overwrite them.
RESERVED_SETTINGS = frozenset({"embedder", "dim", "schema", "generation", "log_start"})

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS people (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        key TEXT,
        metadata TEXT NOT NULL DEFAULT '{}',
        created TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS faces (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        person INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        embedding BLOB NOT NULL,
        embedder TEXT NOT NULL,
        sha256 TEXT,
        source TEXT,
        box TEXT,
        quality TEXT NOT NULL DEFAULT '{}',
        created TEXT NOT NULL,
        thumbnail BLOB)""",
    "CREATE INDEX IF NOT EXISTS faces_person ON faces(person)",
    "CREATE UNIQUE INDEX IF NOT EXISTS faces_person_sha256 ON faces(person, sha256)",
    """CREATE TABLE IF NOT EXISTS groups (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE)""",
    """CREATE TABLE IF NOT EXISTS memberships (
        person INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        grp INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        PRIMARY KEY (person, grp))""",
    "CREATE INDEX IF NOT EXISTS memberships_grp ON memberships(grp)",
    """CREATE TABLE IF NOT EXISTS settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
)
#: Added by schema 2: the change log and the consumers' cursors, the name key's index.
_LOG_SCHEMA = (
    "CREATE INDEX IF NOT EXISTS people_key ON people(key)",
    """CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        op TEXT NOT NULL,
        face INTEGER,
        person INTEGER,
        detail TEXT,
        at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cursors (
        consumer TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        updated TEXT NOT NULL)""",
)
#: The clusters of a photo collection (faceshot.cluster.store reads and writes them).
_CLUSTER_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cluster_photos (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sha256 TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        faces INTEGER NOT NULL,
        created TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS clusters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT,
        created TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cluster_faces (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        photo INTEGER NOT NULL REFERENCES cluster_photos(id) ON DELETE CASCADE,
        cluster INTEGER REFERENCES clusters(id) ON DELETE SET NULL,
        embedding BLOB NOT NULL,
        face TEXT NOT NULL,
        created TEXT NOT NULL,
        thumbnail BLOB)""",
    "CREATE INDEX IF NOT EXISTS cluster_faces_cluster ON cluster_faces(cluster)",
)
#: The service's API keys (faceshot.keys reads and writes them). A gallery made before this table
#: existed gains it when its first key is created (``KEY_SCHEMA`` run in that transaction).
KEY_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS api_keys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        digest TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        groups TEXT NOT NULL DEFAULT '[]',
        name TEXT,
        created TEXT NOT NULL,
        revoked TEXT)""",
)
#: The tables every faceshot gallery has; a SQLite file holding other tables but not these is refused.
_GALLERY_TABLES = frozenset({"people", "faces", "settings"})


def read_settings(where: "str | os.PathLike[str] | Location") -> dict[str, Any] | None:
    """The settings of a gallery (a file or a URL), read only: nothing is created or locked for
    writing; ``None`` for a missing file or database, or one that is not a gallery. A PostgreSQL
    server that cannot be reached raises :class:`~faceshot.errors.UnavailableError`."""
    location = parse_location(where)
    if not location.is_file:
        dialect = dialect_for(location)
        conn = dialect.connect(location, 60.0)
        try:
            with dialect.errors(location):
                if "settings" not in dialect.tables(conn):
                    return None
                rows = conn.execute("SELECT key, value FROM settings").fetchall()
        finally:
            conn.close()
        return {key: json.loads(value) for key, value in rows}
    path = location.path
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0)
        try:
            rows = conn.execute("SELECT key, value FROM settings").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return {key: json.loads(value) for key, value in rows}


def _legacy_key(name: str) -> str:
    try:
        return name_key(name)
    except ConfigError:  # a name 0.1.0 accepted that is refused now ('/'): still findable exactly
        return name.casefold()


def now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def to_blob(vector: np.ndarray) -> bytes:
    """A vector as float32 little-endian bytes (the form stored and exported)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes, dim: int) -> np.ndarray:
    vector = np.frombuffer(blob, dtype="<f4")
    if vector.size != dim:
        raise GalleryError(f"a stored vector has {vector.size} values where {dim} were expected")
    return vector.astype(np.float32)


def _ambiguous(name: str, stored: list[str]) -> GalleryError:
    return GalleryError(
        f"{name!r} could mean {', '.join(repr(text) for text in stored)}: type the name exactly as shown "
        f"(`faceshot gallery check` lists such names; rename or merge them)"
    )


def _chunks(values: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """``values`` in runs of ``size``: SQLite limits the number of bound parameters of one query."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(frozen=True)
class Change:
    """One row of the change log.

    ``op``: ``"face_added"``, ``"face_removed"`` (``face`` and ``person`` set), ``"person_changed"``
    (a person created, renamed, merged, deleted, or their groups or metadata changed: ``person``
    set), ``"setting_changed"`` (``detail`` names the key).
    """

    seq: int
    op: str
    face: int | None
    person: int | None
    detail: str | None = None


#: Change-log operations.
FACE_ADDED, FACE_REMOVED, PERSON_CHANGED, SETTING_CHANGED = "face_added", "face_removed", "person_changed", "setting_changed"


class Database:
    """One connection to the gallery's records: a SQLite file or a PostgreSQL database (``where``: a
    path, a URL or a :class:`~faceshot.gallery.location.Location`). Not safe to share across
    threads without a lock (:class:`~faceshot.gallery.local.LocalStore` holds one).

    ``create=False`` refuses a missing gallery (:class:`~faceshot.errors.NotFound`) instead of making one.
    ``timeout``: how long a write waits for another writer's lock (seconds).
    """

    def __init__(
        self, where: "str | os.PathLike[str] | Location", *, embedder: str, dim: int, timeout: float = 60.0,
        create: bool = True,
    ) -> None:
        self.location = parse_location(where)
        self.dialect: Dialect = dialect_for(self.location)
        self.path = self.location.path if self.location.is_file else None
        self.timeout = timeout
        if not create and self.path is not None and not self.path.is_file():
            raise NotFound(f"{self.location}: no such gallery (enroll someone first, or check the path)")
        self._writing = False
        self.conn = self.dialect.connect(self.location, timeout)
        try:
            tables = self._refuse_foreign()
            if not create and "settings" not in tables:
                raise NotFound(f"{self.location}: no such gallery (enroll someone first, or check the location)")
            if isinstance(self.dialect, SQLiteDialect):
                self.dialect.configure(self.conn)
            self._initialise(embedder, dim, tables)
        except BaseException as exc:
            self.conn.close()
            error = self.dialect.open_error(self.location, exc)
            if error is exc:
                raise
            raise error from None
        self.embedder = embedder
        self.dim = dim

    def _refuse_foreign(self) -> set[str]:
        """A database with tables of its own but not a gallery's is left untouched; returns the tables."""
        tables = self.dialect.tables(self.conn)
        if tables and not _GALLERY_TABLES <= tables:
            raise GalleryError(
                f"{self.location}: a {self.dialect.label} database but not a faceshot gallery (it has tables "
                f"{', '.join(sorted(tables)[:5])}); it was left untouched"
            )
        return tables

    def _initialise(self, embedder: str, dim: int, tables: set[str]) -> None:
        if "settings" in tables:
            stored = self._settings_raw()
            if stored.get("schema") == SCHEMA_VERSION:  # the usual open: nothing to write
                self._check_stored(stored, embedder, dim)
                return
        with self.transaction():
            for statement in _SCHEMA:
                self.conn.execute(self.dialect.ddl(statement))
            stored = self._settings_raw()
            if "embedder" not in stored:
                for statement in (*_LOG_SCHEMA, *_CLUSTER_SCHEMA, *KEY_SCHEMA):
                    self.conn.execute(self.dialect.ddl(statement))
                for statement in self.dialect.log_schema():
                    self.conn.execute(statement)
                for key, value in (("embedder", embedder), ("dim", dim), ("schema", SCHEMA_VERSION), ("log_start", 0)):
                    self._put(key, value)
                return
            if stored.get("schema", 1) < SCHEMA_VERSION and stored["embedder"] == embedder:
                self._migrate(stored)
        self._check_stored(stored, embedder, dim)

    def _check_stored(self, stored: dict[str, Any], embedder: str, dim: int) -> None:
        if stored["embedder"] != embedder or stored.get("dim") != dim:
            raise EmbedderMismatchError(
                f"{self.location} holds {stored.get('dim')}-D vectors made by embedder {stored['embedder']!r}; "
                f"this engine's embedder is {embedder!r} ({dim}-D). Vectors of different embedders cannot "
                f"be compared: open it with embedder={stored['embedder']!r}, or enroll into a new gallery"
            )
        if stored.get("schema", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise GalleryError(
                f"{self.location} was written by a newer faceshot (schema {stored['schema']}); upgrade faceshot"
            )

    def _migrate(self, stored: dict[str, Any]) -> None:
        """Schema 1 → 2, inside the opening transaction: add the change log, continuing the old counter.

        Schema 1 counted writes in the ``generation`` setting. The log starts right after it, so an
        index file saved by 0.1.0 at that generation is still current; an older one is rebuilt.
        """
        generation = int(stored.get("generation", 0))
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(people)")}
        if "key" not in columns:
            self.conn.execute("ALTER TABLE people ADD COLUMN key TEXT")
        for person, name in self.conn.execute("SELECT id, name FROM people").fetchall():
            # Names stored as typed before are kept as they are (no silent merge); only the key is new.
            self.conn.execute("UPDATE people SET key = ? WHERE id = ?", (_legacy_key(name), person))
        for statement in (*_LOG_SCHEMA, *_CLUSTER_SCHEMA, *KEY_SCHEMA):
            self.conn.execute(statement)
        if generation:
            self.conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('changes', ?)", (generation,))
        self.conn.execute("DELETE FROM settings WHERE key = 'generation'")
        self._put("log_start", generation)
        self._put("schema", SCHEMA_VERSION)
        log.info("%s: migrated from schema %s to %d", self.path, stored.get("schema", 1), SCHEMA_VERSION)

    @staticmethod
    def stored_embedder(where: "str | os.PathLike[str] | Location") -> str | None:
        """The embedder a gallery was made with, or ``None`` for a new or foreign one."""
        settings = read_settings(where)
        return None if settings is None else settings.get("embedder")

    def close(self) -> None:
        self.conn.close()

    def reopen(self) -> "Database":
        """Another connection to the same gallery (a background thread's)."""
        return Database(self.location, embedder=self.embedder, dim=self.dim, timeout=self.timeout, create=False)

    def errors(self) -> Any:
        """A context manager turning the driver's exceptions into faceshot's (:meth:`Dialect.errors`)."""
        return self.dialect.errors(self.location)

    def has_table(self, name: str) -> bool:
        return name in self.dialect.tables(self.conn)

    def ensure_tables(self, statements: Iterable[str]) -> None:
        """Create tables a gallery made before them lacks (``KEY_SCHEMA``), inside a write transaction."""
        self._record()
        for statement in statements:
            self.conn.execute(self.dialect.ddl(statement))

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction: its change-log rows commit with it, or not at all."""
        self.dialect.begin_write(self.conn)
        self._writing = True
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        finally:
            self._writing = False

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the same committed state.

        Inside a write transaction it is that transaction (which already sees one state).
        """
        if self.conn.in_transaction:
            yield
            return
        self.dialect.begin_read(self.conn)
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def _record(self) -> None:
        if not self._writing:
            raise RuntimeError("database writes must run inside Database.transaction()")

    def _log(self, op: str, *, face: int | None = None, person: int | None = None, detail: str | None = None) -> None:
        self.dialect.append_change(self.conn, op, face, person, detail, now())

    # -- the change log -----------------------------------------------------------------------
    def head(self) -> int:
        """The number of the last change committed (0 for a new gallery)."""
        return self.dialect.head(self.conn)

    def log_start(self) -> int:
        """Changes up to this number may be gone from the log; a consumer behind it must rebuild."""
        return int(self.get_setting("log_start") or 0)

    def changes(self, after: int, ops: Iterable[str] | None = None, limit: int | None = None) -> list[Change]:
        """The changes after number ``after``, in commit order (of the kinds ``ops``, or all)."""
        query = "SELECT seq, op, face, person, detail FROM changes WHERE seq > ?"
        params: list[Any] = [after]
        if ops is not None:
            kinds = list(ops)
            query += f" AND op IN ({','.join('?' * len(kinds))})"
            params += kinds
        query += " ORDER BY seq"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        return [Change(*row) for row in self.conn.execute(query, params)]

    def cursor(self, consumer: str) -> int | None:
        """Where a durable consumer of the log (an index file, a vector engine) has read up to."""
        row = self.conn.execute("SELECT seq FROM cursors WHERE consumer = ?", (consumer,)).fetchone()
        return None if row is None else int(row[0])

    def set_cursor(self, consumer: str, seq: int) -> None:
        self._record()
        self.conn.execute(
            "INSERT INTO cursors (consumer, seq, updated) VALUES (?, ?, ?) "
            "ON CONFLICT(consumer) DO UPDATE SET seq = excluded.seq, updated = excluded.updated",
            (consumer, seq, now()),
        )

    def prune(self, keep: int) -> int:
        """Drop log rows every durable consumer has read, keeping at least the last ``keep``; returns rows dropped."""
        self._record()
        row = self.conn.execute("SELECT MIN(seq) FROM cursors").fetchone()
        if row[0] is None:
            return 0
        upto = min(int(row[0]), self.head() - keep)
        if upto <= self.log_start():
            return 0
        dropped = self.conn.execute("DELETE FROM changes WHERE seq <= ?", (upto,)).rowcount
        self._put("log_start", upto)
        return int(dropped)

    def vectors_of_faces(self, ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of those faces that still exist, ascending ids."""
        wanted = sorted({int(i) for i in ids})
        found: list[tuple[int, bytes]] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found += self.conn.execute(
                f"SELECT id, embedding FROM faces WHERE id IN ({','.join('?' * len(chunk))}) ORDER BY id", chunk
            ).fetchall()
        ids_found = np.array([row[0] for row in found], dtype=np.int64)
        if not found:
            return ids_found, np.zeros((0, self.dim), np.float32)
        size = 4 * self.dim
        if all(len(row[1]) == size for row in found):  # one decode: a rescoring reads ~1,000 per search
            joined = b"".join(row[1] for row in found)
            return ids_found, np.frombuffer(joined, dtype="<f4").reshape(len(found), self.dim).astype(np.float32)
        return ids_found, np.stack([from_blob(row[1], self.dim) for row in found])  # names the bad vector

    # -- settings ---------------------------------------------------------------------------
    def _settings_raw(self) -> dict[str, Any]:
        return {row["key"]: json.loads(row["value"]) for row in self.conn.execute("SELECT key, value FROM settings")}

    def _put(self, key: str, value: Any) -> None:
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def generation(self) -> int:
        """The number of the last change committed (the log's head; 0 for a new gallery)."""
        return self.head()

    def get_setting(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        self._record()
        if value is None:
            self.conn.execute("DELETE FROM settings WHERE key = ?", (key,))
        else:
            self._put(key, value)
        self._log(SETTING_CHANGED, detail=key)

    # -- people -----------------------------------------------------------------------------
    def person_id(self, name: str) -> int:
        person = self.find_person(name)
        if person is None:
            raise NotFound(f"no person named {name!r} in the gallery")
        return person

    def find_person(self, name: str) -> int | None:
        """The person ``name`` means, however it is spelled (see :mod:`faceshot.gallery.names`).

        The exact stored spelling wins; else the one person whose name differs only in case or
        Unicode form. Names that collide that way (stored before names were normalised) must be
        typed exactly: :class:`~faceshot.errors.GalleryError` lists them (``gallery check`` too).
        """
        text = normalise_name(name)
        row = self.conn.execute("SELECT id FROM people WHERE name = ?", (text,)).fetchone()
        if row is not None:
            return int(row[0])
        rows = self.conn.execute("SELECT id, name FROM people WHERE key = ? ORDER BY id", (name_key(text),)).fetchall()
        if len(rows) > 1:
            raise _ambiguous(name, [row[1] for row in rows])
        return int(rows[0][0]) if rows else None

    def create_person(self, name: str, metadata: dict[str, Any] | None = None, created: str | None = None) -> int:
        self._record()
        text = normalise_name(name)
        cursor = self.conn.execute(
            "INSERT INTO people (name, key, metadata, created) VALUES (?, ?, ?, ?) RETURNING id",
            (text, name_key(text), json.dumps(metadata or {}), created or now()),
        )
        person = int(cursor.fetchone()[0])
        self._log(PERSON_CHANGED, person=person)
        return person

    def merge_metadata(self, person: int, metadata: dict[str, Any]) -> None:
        self._record()
        row = self.conn.execute("SELECT metadata FROM people WHERE id = ?", (person,)).fetchone()
        merged = {**json.loads(row[0]), **metadata}
        self.conn.execute("UPDATE people SET metadata = ? WHERE id = ?", (json.dumps(merged), person))
        self._log(PERSON_CHANGED, person=person)

    def rename(self, old: str, new: str) -> None:
        self._record()
        person = self.person_id(old)
        text = normalise_name(new)
        other = self.find_person(text)
        if other is not None and other != person:
            raise ConflictError(f"cannot rename {old!r} to {new!r}: {new!r} is already enrolled; use merge")
        # Renaming to another spelling of the same name (case, spaces) changes how it is shown.
        self.conn.execute("UPDATE people SET name = ?, key = ? WHERE id = ?", (text, name_key(text), person))
        self._log(PERSON_CHANGED, person=person)

    def delete_person(self, name: str) -> int:
        self._record()
        person = self.person_id(name)
        ids = [row[0] for row in self.conn.execute("SELECT id FROM faces WHERE person = ?", (person,))]
        self.conn.execute("DELETE FROM faces WHERE person = ?", (person,))
        self.conn.execute("DELETE FROM people WHERE id = ?", (person,))
        self._drop_empty_groups()
        for face in ids:
            self._log(FACE_REMOVED, face=face, person=person)
        self._log(PERSON_CHANGED, person=person)
        return len(ids)

    def merge(self, source: str, target: str) -> int:
        self._record()
        if source == target:
            raise GalleryError(f"cannot merge {source!r} into itself")
        src, dst = self.person_id(source), self.person_id(target)
        # The same photo enrolled for both: keep the target's face, drop the source's copy.
        duplicates = [
            row[0]
            for row in self.conn.execute(
                "SELECT id FROM faces WHERE person = ? AND sha256 IN (SELECT sha256 FROM faces WHERE person = ?)",
                (src, dst),
            )
        ]
        if duplicates:
            self.conn.execute(f"DELETE FROM faces WHERE id IN ({','.join('?' * len(duplicates))})", duplicates)
            for face in duplicates:
                self._log(FACE_REMOVED, face=face, person=src)
        moved = self.conn.execute("UPDATE faces SET person = ? WHERE person = ?", (dst, src)).rowcount
        self.conn.execute(
            "INSERT INTO memberships (person, grp) SELECT ?, grp FROM memberships WHERE person = ? ON CONFLICT DO NOTHING",
            (dst, src),
        )
        row = self.conn.execute("SELECT metadata FROM people WHERE id = ?", (src,)).fetchone()
        target_row = self.conn.execute("SELECT metadata FROM people WHERE id = ?", (dst,)).fetchone()
        merged = {**json.loads(row[0]), **json.loads(target_row[0])}  # the target's values win
        self.conn.execute("UPDATE people SET metadata = ? WHERE id = ?", (json.dumps(merged), dst))
        self.conn.execute("DELETE FROM people WHERE id = ?", (src,))
        # The moved faces keep their ids and vectors; a consumer that keeps per-face person or
        # group attributes re-reads the target's faces.
        self._log(PERSON_CHANGED, person=src)
        self._log(PERSON_CHANGED, person=dst)
        return moved

    # -- faces ------------------------------------------------------------------------------
    def face_by_sha(self, person: int, sha256: str) -> int | None:
        row = self.conn.execute("SELECT id FROM faces WHERE person = ? AND sha256 = ?", (person, sha256)).fetchone()
        return None if row is None else int(row[0])

    def insert_face(
        self,
        person: int,
        embedding: np.ndarray,
        *,
        sha256: str | None,
        source: str | None,
        box: dict[str, int] | None,
        quality: dict[str, Any],
        thumbnail: bytes | None,
        created: str | None,
    ) -> int:
        self._record()
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if vector.size != self.dim or not np.all(np.isfinite(vector)):
            raise GalleryError(f"a face vector must be {self.dim} finite numbers, got {vector.size}")
        cursor = self.conn.execute(
            "INSERT INTO faces (person, embedding, embedder, sha256, source, box, quality, created, thumbnail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                person,
                to_blob(vector),
                self.embedder,
                sha256,
                source,
                None if box is None else json.dumps(box),
                json.dumps(quality),
                created or now(),
                thumbnail,
            ),
        )
        face_id = int(cursor.fetchone()[0])
        self._log(FACE_ADDED, face=face_id, person=person)
        return face_id

    def remove_face(self, face_id: int) -> str:
        self._record()
        row = self.conn.execute(
            "SELECT people.name, people.id FROM faces JOIN people ON people.id = faces.person WHERE faces.id = ?",
            (face_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no face with id {face_id} in the gallery")
        self.conn.execute("DELETE FROM faces WHERE id = ?", (face_id,))
        self._log(FACE_REMOVED, face=face_id, person=int(row[1]))
        return str(row[0])

    def known_files(self, person: int, sha256s: Iterable[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(sha256s))
        found: dict[str, int] = {}
        for start in range(0, len(wanted), 500):  # SQLite limits the number of bound parameters
            chunk = wanted[start : start + 500]
            rows = self.conn.execute(
                f"SELECT sha256, id FROM faces WHERE person = ? AND sha256 IN ({','.join('?' * len(chunk))})",
                (person, *chunk),
            )
            found.update({row[0]: int(row[1]) for row in rows})
        return found

    def faces_of_files(self, sha256s: Iterable[str]) -> list[sqlite3.Row]:
        """Every face enrolled from these photo files: ``sha256, id, person (name), box``."""
        wanted = list(dict.fromkeys(sha256s))
        rows: list[sqlite3.Row] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows += self.conn.execute(
                "SELECT faces.sha256, faces.id, people.name AS person, faces.box FROM faces "
                f"JOIN people ON people.id = faces.person WHERE faces.sha256 IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
        return rows

    def name_collisions(self) -> list[tuple[str, ...]]:
        """Names stored before normalisation that differ only in case or Unicode form."""
        rows = self.conn.execute(
            "SELECT key, name FROM people WHERE key IN (SELECT key FROM people GROUP BY key HAVING COUNT(*) > 1) "
            "ORDER BY key, id"
        ).fetchall()
        groups: dict[str, list[str]] = {}
        for key, name in rows:
            groups.setdefault(key, []).append(name)
        return [tuple(names) for names in groups.values()]

    def face_rows(self, person: int | None = None) -> list[sqlite3.Row]:
        query = (
            "SELECT faces.id, people.name AS person, source, sha256, box, quality, embedder, faces.created, "
            "thumbnail IS NOT NULL AS has_thumbnail FROM faces JOIN people ON people.id = faces.person"
        )
        if person is None:
            return self.conn.execute(query + " ORDER BY faces.id").fetchall()
        return self.conn.execute(query + " WHERE person = ? ORDER BY faces.id", (person,)).fetchall()

    def face_ids(self) -> np.ndarray:
        """Every face id, ascending."""
        return np.array([row[0] for row in self.conn.execute("SELECT id FROM faces ORDER BY id")], dtype=np.int64)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of every face."""
        rows = self.conn.execute("SELECT id, embedding FROM faces ORDER BY id").fetchall()
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        if not rows:
            return ids, np.zeros((0, self.dim), np.float32)
        return ids, np.stack([from_blob(row[1], self.dim) for row in rows])

    def vectors_of(self, names: Iterable[str]) -> dict[str, np.ndarray]:
        """Every face vector of each named person (``(0, dim)`` for a name nobody has), in a few
        queries whatever the number of names: a list of 1,000 friends costs milliseconds, not 2,000
        round trips to a database server."""
        people = self.find_people(names)
        found: dict[int, list[np.ndarray]] = {person: [] for person in people.values() if person is not None}
        for chunk in _chunks(list(found)):
            rows = self.conn.execute(
                f"SELECT person, embedding FROM faces WHERE person IN ({','.join('?' * len(chunk))}) ORDER BY id", chunk
            )
            for person, blob in rows:
                found[int(person)].append(from_blob(blob, self.dim))
        empty = np.zeros((0, self.dim), np.float32)
        return {
            name: np.stack(found[person]) if person is not None and found[person] else empty
            for name, person in people.items()
        }

    def person_faces(self, people: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(person ids, vectors)`` of every face of ``people`` (every face when ``None``),
        ordered by person, then face: what per-person templates are computed from."""
        query = "SELECT person, embedding FROM faces"
        rows: list[Any] = []
        if people is None:
            rows = self.conn.execute(query + " ORDER BY person, id").fetchall()
        else:
            for chunk in _chunks(sorted({int(p) for p in people})):
                rows += self.conn.execute(
                    f"{query} WHERE person IN ({','.join('?' * len(chunk))}) ORDER BY person, id", chunk
                ).fetchall()
        owners = np.array([row[0] for row in rows], dtype=np.int64)
        if not rows:
            return owners, np.zeros((0, self.dim), np.float32)
        return owners, np.stack([from_blob(row[1], self.dim) for row in rows])

    def names_of_people(self, ids: Iterable[int]) -> dict[int, str]:
        """``{person id: name}`` of those people that still exist."""
        names: dict[int, str] = {}
        for chunk in _chunks(sorted({int(i) for i in ids})):
            rows = self.conn.execute(f"SELECT id, name FROM people WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            names.update({int(row[0]): str(row[1]) for row in rows})
        return names

    def group_people(self, groups: str | Iterable[str]) -> np.ndarray:
        """The ids of the members of one group or several (their union), ascending."""
        ids = self.group_ids(groups)
        rows = self.conn.execute(
            f"SELECT DISTINCT person FROM memberships WHERE grp IN ({','.join('?' * len(ids))}) ORDER BY person", ids
        )
        return np.array([row[0] for row in rows], dtype=np.int64)

    def person_ids(self, names: Iterable[str]) -> dict[str, int]:
        """The stable id of each named person who exists (a rename keeps it; ids are never reused)."""
        return {name: person for name, person in self.find_people(names).items() if person is not None}

    def find_people(self, names: Iterable[str]) -> dict[str, int | None]:
        """:meth:`find_person` of each name (``None``: nobody), in a few queries whatever their number."""
        wanted = list(dict.fromkeys(names))
        texts = {name: normalise_name(name) for name in wanted}
        exact: dict[str, int] = {}
        for chunk in _chunks(sorted(set(texts.values()))):
            rows = self.conn.execute(f"SELECT id, name FROM people WHERE name IN ({','.join('?' * len(chunk))})", chunk)
            exact.update({str(row[1]): int(row[0]) for row in rows})
        # Names not stored as typed: found by their key (case and Unicode form), as find_person does.
        keys = {name: name_key(texts[name]) for name in wanted if texts[name] not in exact}
        by_key: dict[str, list[tuple[int, str]]] = {}
        for chunk in _chunks(sorted(set(keys.values()))):
            rows = self.conn.execute(
                f"SELECT id, name, key FROM people WHERE key IN ({','.join('?' * len(chunk))}) ORDER BY id", chunk
            )
            for row in rows:
                by_key.setdefault(str(row[2]), []).append((int(row[0]), str(row[1])))
        found: dict[str, int | None] = {}
        for name in wanted:
            if texts[name] in exact:
                found[name] = exact[texts[name]]
                continue
            matches = by_key.get(keys[name], [])
            if len(matches) > 1:
                raise _ambiguous(name, [match[1] for match in matches])
            found[name] = matches[0][0] if matches else None
        return found

    def names_of_faces(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = [int(i) for i in ids]
        names: dict[int, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self.conn.execute(
                "SELECT faces.id, people.name FROM faces JOIN people ON people.id = faces.person "
                f"WHERE faces.id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            names.update({int(row[0]): str(row[1]) for row in rows})
        return names

    def thumbnail(self, face_id: int) -> bytes | None:
        row = self.conn.execute("SELECT thumbnail FROM faces WHERE id = ?", (face_id,)).fetchone()
        if row is None:
            raise NotFound(f"no face with id {face_id} in the gallery")
        return None if row[0] is None else bytes(row[0])

    def counts(self) -> tuple[int, int]:
        """``(people, faces)``."""
        people = self.conn.execute("SELECT COUNT(*) FROM people").fetchone()[0]
        faces = self.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        return int(people), int(faces)

    # -- groups -----------------------------------------------------------------------------
    def group_id(self, group: str) -> int:
        row = self.conn.execute("SELECT id FROM groups WHERE name = ?", (group,)).fetchone()
        if row is None:
            raise NotFound(f"no group named {group!r} in the gallery")
        return int(row[0])

    def join(self, person: int, group: str) -> None:
        self._record()
        if not group or not group.strip():
            raise GalleryError("a group needs a non-empty name")
        self.conn.execute("INSERT INTO groups (name) VALUES (?) ON CONFLICT DO NOTHING", (group,))
        joined = self.conn.execute(
            "INSERT INTO memberships (person, grp) SELECT ?, id FROM groups WHERE name = ? ON CONFLICT DO NOTHING",
            (person, group),
        ).rowcount
        if joined:
            self._log(PERSON_CHANGED, person=person, detail=f"joined {group}")

    def leave(self, person: int, group: str) -> bool:
        self._record()
        removed = self.conn.execute(
            "DELETE FROM memberships WHERE person = ? AND grp = (SELECT id FROM groups WHERE name = ?)", (person, group)
        ).rowcount
        self._drop_empty_groups()
        if removed:
            self._log(PERSON_CHANGED, person=person, detail=f"left {group}")
        return bool(removed)

    def _drop_empty_groups(self) -> None:
        self.conn.execute("DELETE FROM groups WHERE id NOT IN (SELECT grp FROM memberships)")

    def groups_of(self, person: int) -> tuple[str, ...]:
        rows = self.conn.execute(
            "SELECT groups.name FROM memberships JOIN groups ON groups.id = memberships.grp "
            "WHERE memberships.person = ? ORDER BY groups.name",
            (person,),
        )
        return tuple(row[0] for row in rows)

    def group_rows(self) -> list[tuple[str, tuple[str, ...]]]:
        rows = self.conn.execute(
            "SELECT groups.name AS grp, people.name AS person FROM groups "
            "JOIN memberships ON memberships.grp = groups.id JOIN people ON people.id = memberships.person "
            "ORDER BY groups.name, people.name"
        ).fetchall()
        members: dict[str, list[str]] = {}
        for row in rows:
            members.setdefault(row["grp"], []).append(row["person"])
        return [(group, tuple(people)) for group, people in members.items()]

    def group_ids(self, groups: str | Iterable[str]) -> list[int]:
        """The ids of one group or several; :class:`~faceshot.errors.NotFound` names any that does not exist."""
        names = [groups] if isinstance(groups, str) else list(dict.fromkeys(groups))
        if not names:
            raise NotFound("no group given (an empty list of groups searches nobody)")
        return [self.group_id(name) for name in names]

    def group_face_ids(self, groups: str | Iterable[str]) -> np.ndarray:
        """Every face of the members of one group or several (their union), ascending."""
        ids = self.group_ids(groups)
        rows = self.conn.execute(
            "SELECT DISTINCT faces.id FROM faces JOIN memberships ON memberships.person = faces.person "
            f"WHERE memberships.grp IN ({','.join('?' * len(ids))}) ORDER BY faces.id",
            ids,
        )
        return np.array([row[0] for row in rows], dtype=np.int64)

    def face_groups(self, faces: Iterable[int] | None = None, people: Iterable[int] = ()) -> dict[int, tuple[int, ...]]:
        """The ids of the groups each face's person is in, for the faces that still exist among
        ``faces`` and every face of ``people`` (every face when ``faces`` is ``None``): what a
        vector engine keeps beside each vector to search a group inside the engine."""
        query = "SELECT faces.id, memberships.grp FROM faces LEFT JOIN memberships ON memberships.person = faces.person"
        rows: list[Any] = []
        if faces is None:
            rows = self.conn.execute(query).fetchall()
        else:
            for column, wanted in (("faces.id", sorted({int(i) for i in faces})), ("faces.person", sorted({int(p) for p in people}))):
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start : start + 500]
                    rows += self.conn.execute(f"{query} WHERE {column} IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        found: dict[int, set[int]] = {}
        for face, group in rows:
            held = found.setdefault(int(face), set())
            if group is not None:
                held.add(int(group))
        return {face: tuple(sorted(groups)) for face, groups in sorted(found.items())}

    def scope(self, groups: str | Iterable[str] | None) -> tuple[int, int, int]:
        """``(faces, most faces of one person, people)`` among everyone, or the members of the groups."""
        if groups is None:
            row = self.conn.execute(
                "SELECT COALESCE(SUM(n), 0), COALESCE(MAX(n), 0), COUNT(*) "
                "FROM (SELECT COUNT(*) AS n FROM faces GROUP BY person) AS counts"
            ).fetchone()
        else:
            ids = self.group_ids(groups)
            row = self.conn.execute(
                "SELECT COALESCE(SUM(n), 0), COALESCE(MAX(n), 0), COUNT(*) FROM (SELECT COUNT(*) AS n FROM faces "
                "WHERE faces.person IN (SELECT person FROM memberships "
                f"WHERE grp IN ({','.join('?' * len(ids))})) GROUP BY faces.person) AS counts",
                ids,
            ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    # -- people listings --------------------------------------------------------------------
    def people_rows(self) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT people.id, people.name, people.metadata, people.created, COUNT(faces.id) AS faces "
            "FROM people LEFT JOIN faces ON faces.person = people.id GROUP BY people.id ORDER BY people.name"
        ).fetchall()

    def person_row(self, name: str) -> sqlite3.Row:
        row = self.conn.execute(
            "SELECT id, name, metadata, created FROM people WHERE id = ?", (self.find_person(name),)
        ).fetchone()
        if row is None:
            raise NotFound(f"no person named {name!r} in the gallery")
        return row

    def export_page(
        self, after: str | None, limit: int, *, thumbnails: bool = False
    ) -> list[tuple[Any, list[Any], tuple[str, ...]]]:
        """The next ``limit`` people by name after ``after`` (from the first when ``None``): each
        person's row (id, name, metadata, created), their faces' rows (embedding, sha256, source,
        box, quality, created, and ``thumbnail`` when asked) in id order, and their groups by name.
        A few queries a page, not two a person; call inside one snapshot for a consistent export."""
        query = "SELECT id, name, metadata, created FROM people"
        params: list[Any] = []
        if after is not None:
            query += " WHERE name > ?"
            params.append(after)
        people = self.conn.execute(query + f" ORDER BY name LIMIT {int(limit)}", params).fetchall()
        ids = [int(row["id"]) for row in people]
        faces: dict[int, list[Any]] = {person: [] for person in ids}
        groups: dict[int, list[str]] = {person: [] for person in ids}
        columns = "person, embedding, sha256, source, box, quality, created" + (", thumbnail" if thumbnails else "")
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT {columns} FROM faces WHERE person IN ({marks}) ORDER BY id", chunk):
                faces[int(row["person"])].append(row)
            for person, name in self.conn.execute(
                "SELECT memberships.person, groups.name FROM memberships JOIN groups ON groups.id = memberships.grp "
                f"WHERE memberships.person IN ({marks}) ORDER BY groups.name",
                chunk,
            ):
                groups[int(person)].append(name)
        return [(row, faces[int(row["id"])], tuple(groups[int(row["id"])])) for row in people]
