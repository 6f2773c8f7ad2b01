"""The gallery's source of truth: one SQLite file in WAL mode.

Tables::

    people(id, name UNIQUE, metadata JSON, created)
    faces(id, person → people, embedding BLOB float32 little-endian, embedder, sha256, source,
          box JSON, quality JSON, created, thumbnail BLOB NULL)       UNIQUE(person, sha256)
    groups(id, name UNIQUE)
    memberships(person → people, grp → groups)                         many-to-many
    settings(key PRIMARY KEY, value JSON)     embedder, dim, schema, generation, user settings

Face ids come from AUTOINCREMENT, so an id is never given out twice, even after a delete: a deleted
face's id can never come back in a search as somebody else's face.

Every write runs in ``BEGIN IMMEDIATE`` … ``COMMIT`` (:meth:`Database.transaction`), takes the
write lock up front and, when another process holds it, waits up to ``timeout`` seconds rather
than failing. Each write bumps ``generation`` in the same transaction, which is how an index made
earlier, or by another process, knows it is out of date. ``synchronous=FULL``: a commit has
reached the disk when the method that made it returns.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from faceshot.errors import EmbedderMismatchError, GalleryError, NotFound

__all__ = ["Database", "Changes", "SCHEMA_VERSION", "RESERVED_SETTINGS", "now", "to_blob", "from_blob"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Settings the store owns; users cannot overwrite them.
RESERVED_SETTINGS = frozenset({"embedder", "dim", "schema", "generation"})

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS people (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
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


@dataclass
class Changes:
    """What one transaction did to the set of faces, so the in-memory index can follow it."""

    before: int = 0
    after: int = 0
    added_ids: list[int] = field(default_factory=list)
    added_vectors: list[np.ndarray] = field(default_factory=list)
    removed_ids: list[int] = field(default_factory=list)


class Database:
    """One connection to the gallery's SQLite file. Not safe to share across threads without a lock
    (:class:`~faceshot.gallery.local.LocalStore` holds one)."""

    def __init__(self, path: Path, *, embedder: str, dim: int, timeout: float = 60.0) -> None:
        self.path = path
        try:
            self.conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise GalleryError(f"{path}: cannot open the gallery database ({exc})") from None
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._initialise(embedder, dim)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise GalleryError(f"{path}: not a faceshot gallery, or a damaged one ({exc})") from None
        except BaseException:
            self.conn.close()
            raise
        self.embedder = embedder
        self.dim = dim
        self._changes: Changes | None = None

    def _initialise(self, embedder: str, dim: int) -> None:
        with self.transaction(bump=False):
            for statement in _SCHEMA:
                self.conn.execute(statement)
            stored = self._settings_raw()
            if "embedder" not in stored:
                for key, value in (("embedder", embedder), ("dim", dim), ("schema", SCHEMA_VERSION), ("generation", 0)):
                    self._put(key, value)
                return
        if stored["embedder"] != embedder or stored.get("dim") != dim:
            raise EmbedderMismatchError(
                f"{self.path} holds {stored.get('dim')}-D vectors made by embedder {stored['embedder']!r}; "
                f"this engine's embedder is {embedder!r} ({dim}-D). Vectors of different embedders cannot "
                f"be compared: open it with embedder={stored['embedder']!r}, or enroll into a new gallery"
            )
        if stored.get("schema", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise GalleryError(
                f"{self.path} was written by a newer faceshot (schema {stored['schema']}); upgrade faceshot"
            )

    @staticmethod
    def stored_embedder(path: Path) -> str | None:
        """The embedder a gallery file was made with, or ``None`` for a new or foreign file."""
        if not path.is_file():
            return None
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0)
            try:
                row = conn.execute("SELECT value FROM settings WHERE key = 'embedder'").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            return None
        return None if row is None else json.loads(row[0])

    def close(self) -> None:
        self.conn.close()

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, bump: bool = True) -> Iterator[Changes]:
        """A write transaction; the generation goes up by one in it when ``bump``."""
        self.conn.execute("BEGIN IMMEDIATE")
        changes = Changes()
        self._changes = changes
        try:
            if bump:
                changes.before = self._generation()
            yield changes
            if bump:
                changes.after = changes.before + 1
                self._put("generation", changes.after)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        finally:
            self._changes = None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the same committed state."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def _record(self) -> Changes:
        if self._changes is None:
            raise RuntimeError("database writes must run inside Database.transaction()")
        return self._changes

    # -- settings ---------------------------------------------------------------------------
    def _settings_raw(self) -> dict[str, Any]:
        return {row["key"]: json.loads(row["value"]) for row in self.conn.execute("SELECT key, value FROM settings")}

    def _put(self, key: str, value: Any) -> None:
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def _generation(self) -> int:
        row = self.conn.execute("SELECT value FROM settings WHERE key = 'generation'").fetchone()
        return int(json.loads(row[0])) if row else 0

    def generation(self) -> int:
        return self._generation()

    def get_setting(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        self._record()
        if value is None:
            self.conn.execute("DELETE FROM settings WHERE key = ?", (key,))
        else:
            self._put(key, value)

    # -- people -----------------------------------------------------------------------------
    def person_id(self, name: str) -> int:
        row = self.conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no person named {name!r} in the gallery")
        return int(row[0])

    def find_person(self, name: str) -> int | None:
        row = self.conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def create_person(self, name: str, metadata: dict[str, Any] | None = None, created: str | None = None) -> int:
        self._record()
        if not name or not name.strip():
            raise GalleryError("a person needs a non-empty name")
        cursor = self.conn.execute(
            "INSERT INTO people (name, metadata, created) VALUES (?, ?, ?)",
            (name, json.dumps(metadata or {}), created or now()),
        )
        return int(cursor.lastrowid)

    def merge_metadata(self, person: int, metadata: dict[str, Any]) -> None:
        self._record()
        row = self.conn.execute("SELECT metadata FROM people WHERE id = ?", (person,)).fetchone()
        merged = {**json.loads(row[0]), **metadata}
        self.conn.execute("UPDATE people SET metadata = ? WHERE id = ?", (json.dumps(merged), person))

    def rename(self, old: str, new: str) -> None:
        self._record()
        person = self.person_id(old)
        if self.find_person(new) is not None:
            raise GalleryError(f"cannot rename {old!r} to {new!r}: {new!r} is already enrolled; use merge")
        if not new or not new.strip():
            raise GalleryError("a person needs a non-empty name")
        self.conn.execute("UPDATE people SET name = ? WHERE id = ?", (new, person))

    def delete_person(self, name: str) -> int:
        changes = self._record()
        person = self.person_id(name)
        ids = [row[0] for row in self.conn.execute("SELECT id FROM faces WHERE person = ?", (person,))]
        self.conn.execute("DELETE FROM faces WHERE person = ?", (person,))
        self.conn.execute("DELETE FROM people WHERE id = ?", (person,))
        self._drop_empty_groups()
        changes.removed_ids.extend(ids)
        return len(ids)

    def merge(self, source: str, target: str) -> int:
        changes = self._record()
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
            changes.removed_ids.extend(duplicates)
        moved = self.conn.execute("UPDATE faces SET person = ? WHERE person = ?", (dst, src)).rowcount
        self.conn.execute(
            "INSERT OR IGNORE INTO memberships (person, grp) SELECT ?, grp FROM memberships WHERE person = ?",
            (dst, src),
        )
        row = self.conn.execute("SELECT metadata FROM people WHERE id = ?", (src,)).fetchone()
        target_row = self.conn.execute("SELECT metadata FROM people WHERE id = ?", (dst,)).fetchone()
        merged = {**json.loads(row[0]), **json.loads(target_row[0])}  # the target's values win
        self.conn.execute("UPDATE people SET metadata = ? WHERE id = ?", (json.dumps(merged), dst))
        self.conn.execute("DELETE FROM people WHERE id = ?", (src,))
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
        changes = self._record()
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if vector.size != self.dim or not np.all(np.isfinite(vector)):
            raise GalleryError(f"a face vector must be {self.dim} finite numbers, got {vector.size}")
        cursor = self.conn.execute(
            "INSERT INTO faces (person, embedding, embedder, sha256, source, box, quality, created, thumbnail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        face_id = int(cursor.lastrowid)
        changes.added_ids.append(face_id)
        changes.added_vectors.append(vector)
        return face_id

    def remove_face(self, face_id: int) -> str:
        changes = self._record()
        row = self.conn.execute(
            "SELECT people.name FROM faces JOIN people ON people.id = faces.person WHERE faces.id = ?", (face_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no face with id {face_id} in the gallery")
        self.conn.execute("DELETE FROM faces WHERE id = ?", (face_id,))
        changes.removed_ids.append(face_id)
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
        found: dict[str, list[np.ndarray]] = {}
        for name in dict.fromkeys(names):
            rows = self.conn.execute(
                "SELECT embedding FROM faces JOIN people ON people.id = faces.person WHERE people.name = ?", (name,)
            )
            found[name] = [from_blob(row[0], self.dim) for row in rows]
        return {
            name: np.stack(vectors) if vectors else np.zeros((0, self.dim), np.float32)
            for name, vectors in found.items()
        }

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
        self.conn.execute("INSERT OR IGNORE INTO groups (name) VALUES (?)", (group,))
        self.conn.execute(
            "INSERT OR IGNORE INTO memberships (person, grp) SELECT ?, id FROM groups WHERE name = ?", (person, group)
        )

    def leave(self, person: int, group: str) -> bool:
        self._record()
        removed = self.conn.execute(
            "DELETE FROM memberships WHERE person = ? AND grp = (SELECT id FROM groups WHERE name = ?)", (person, group)
        ).rowcount
        self._drop_empty_groups()
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

    def group_face_ids(self, group: str) -> np.ndarray:
        grp = self.group_id(group)
        rows = self.conn.execute(
            "SELECT faces.id FROM faces JOIN memberships ON memberships.person = faces.person WHERE memberships.grp = ?",
            (grp,),
        )
        return np.array([row[0] for row in rows], dtype=np.int64)

    def scope(self, group: str | None) -> tuple[int, int, int]:
        if group is None:
            row = self.conn.execute(
                "SELECT COALESCE(SUM(n), 0), COALESCE(MAX(n), 0), COUNT(*) "
                "FROM (SELECT COUNT(*) AS n FROM faces GROUP BY person)"
            ).fetchone()
        else:
            grp = self.group_id(group)
            row = self.conn.execute(
                "SELECT COALESCE(SUM(n), 0), COALESCE(MAX(n), 0), COUNT(*) FROM (SELECT COUNT(*) AS n FROM faces "
                "JOIN memberships ON memberships.person = faces.person WHERE memberships.grp = ? GROUP BY faces.person)",
                (grp,),
            ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    # -- people listings --------------------------------------------------------------------
    def people_rows(self) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT people.id, people.name, people.metadata, people.created, COUNT(faces.id) AS faces "
            "FROM people LEFT JOIN faces ON faces.person = people.id GROUP BY people.id ORDER BY people.name"
        ).fetchall()

    def person_row(self, name: str) -> sqlite3.Row:
        row = self.conn.execute("SELECT id, name, metadata, created FROM people WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no person named {name!r} in the gallery")
        return row

    def export_rows(self, person: int) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT embedding, sha256, source, box, quality, created FROM faces WHERE person = ? ORDER BY id", (person,)
        ).fetchall()
