"""The embedded store: SQLite holds everything, a FAISS index beside it answers searches.

The index is derived data. On open it is read from ``<db>.faiss`` when that file matches the
database (same embedder, generation, count and checksum), and rebuilt from SQLite otherwise:
missing, stale or corrupt files are never trusted. This process's own writes update the
in-memory index and re-save the file; another process's writes are noticed on the next search
(the database generation moved) and the index is rebuilt from SQLite then.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from faceshot.errors import ConfigError, NotFound
from faceshot.gallery.database import RESERVED_SETTINGS, Changes, Database, from_blob
from faceshot.gallery.index import IndexFileError, VectorIndex, create_index, read_index_file, write_index_file
from faceshot.gallery.results import (
    CheckReport,
    FaceInfo,
    GroupSummary,
    ImportSummary,
    PersonDetails,
    PersonSummary,
)
from faceshot.gallery.store import Added, Hit, NewFace, PersonRecord, Store
from faceshot.quality import Quality
from faceshot.results import Box

__all__ = ["LocalStore", "index_path"]

log = logging.getLogger(__name__)


def index_path(path: Path) -> Path:
    """Where the index of the gallery database at ``path`` is saved."""
    return path.with_name(path.name + ".faiss")


class LocalStore(Store):
    """A gallery in one SQLite file (the truth) plus ``<file>.faiss`` (a derived index).

    ``embedder``/``dim`` name the vectors this store holds; opening a file made with another
    embedder raises :class:`~faceshot.errors.EmbedderMismatchError`. ``index`` picks the index type
    (``"flat"``: exact search). ``timeout``: how long a write waits for another process's write.
    Safe to use from several threads (one lock) and several processes (SQLite's locks).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        embedder: str,
        dim: int,
        index: str = "flat",
        timeout: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.embedder = embedder
        self.dim = dim
        self.index_kind = index
        self.index_path = index_path(self.path)
        create_index(index, dim)  # an unknown index kind fails here, before any file is touched
        self._lock = threading.RLock()
        self._db = Database(self.path, embedder=embedder, dim=dim, timeout=timeout)
        self._index: VectorIndex | None = None
        self._index_generation = -1
        self._open_index()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.path)!r}, embedder={self.embedder!r})"

    @staticmethod
    def stored_embedder(path: str | os.PathLike[str]) -> str | None:
        """The embedder an existing gallery file was made with (``None`` if it does not exist yet)."""
        return Database.stored_embedder(Path(path))

    # -- the derived index ------------------------------------------------------------------
    def _open_index(self) -> None:
        with self._lock:
            try:
                index, header = read_index_file(self.index_path)
            except IndexFileError as exc:
                log.info("%s: index file %s; rebuilding it from the database", self.path, exc)
                self._rebuild()
                return
            with self._db.snapshot():
                generation = self._db.generation()
                _, faces = self._db.counts()
            problem = _header_problem(header, self, generation, faces)
            if problem:
                log.info("%s: index file is %s; rebuilding it from the database", self.path, problem)
                self._rebuild()
                return
            self._index, self._index_generation = index, header.generation

    def _rebuild(self) -> None:
        """Build the index from the database's current state and save it."""
        with self._db.snapshot():
            generation = self._db.generation()
            ids, vectors = self._db.all_vectors()
        index = create_index(self.index_kind, self.dim)
        index.add(ids, vectors)
        self._index, self._index_generation = index, generation
        self._save()
        log.debug("%s: index rebuilt at generation %d with %d faces", self.path, generation, len(ids))

    def _save(self) -> None:
        assert self._index is not None
        try:
            write_index_file(self.index_path, self._index, embedder=self.embedder, generation=self._index_generation)
        except OSError as exc:
            # The database already holds the write; the index is rebuilt from it next time.
            log.warning("%s: could not save the index (%s); it will be rebuilt on next open", self.index_path, exc)

    def _current(self) -> VectorIndex:
        """The index, brought up to date first if the database moved on (another process wrote)."""
        if self._index is None or self._db.generation() != self._index_generation:
            self._rebuild()
        assert self._index is not None
        return self._index

    def _follow(self, changes: Changes) -> None:
        """Apply a committed transaction to the in-memory index, or mark it stale."""
        if self._index is None or self._index_generation != changes.before:
            # Another process wrote since our index was made: the next search rebuilds it.
            self._index_generation = -1
            return
        try:
            self._index.remove(np.array(changes.removed_ids, dtype=np.int64))
            if changes.added_ids:
                self._index.add(np.array(changes.added_ids, dtype=np.int64), np.stack(changes.added_vectors))
        except Exception:
            self._index_generation = -1
            raise
        self._index_generation = changes.after
        # Saved even when no vector moved: the file's generation must follow the database's, or
        # the next open would take it for stale and rebuild.
        self._save()

    def _write(self) -> "_Write":
        return _Write(self)

    # -- settings ---------------------------------------------------------------------------
    def get_setting(self, key: str) -> Any:
        with self._lock:
            return self._db.get_setting(key)

    def set_setting(self, key: str, value: Any) -> None:
        if key in RESERVED_SETTINGS:
            raise ConfigError(f"the setting {key!r} is managed by the gallery and cannot be changed")
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {key!r}: {value!r} cannot be stored (JSON types only)") from None
        with self._write():
            self._db.set_setting(key, value)

    # -- writes -----------------------------------------------------------------------------
    def add_faces(
        self,
        name: str,
        faces: Sequence[NewFace],
        *,
        create: bool = False,
        metadata: dict[str, Any] | None = None,
        groups: Iterable[str] = (),
    ) -> list[Added]:
        groups = tuple(groups)
        with self._write():
            person = self._db.find_person(name)
            if person is None:
                if not create:
                    raise NotFound(f"no person named {name!r} in the gallery; enroll them first")
                person = self._db.create_person(name, metadata)
            elif metadata:
                self._db.merge_metadata(person, metadata)
            for group in groups:
                self._db.join(person, group)
            return [self._add_one(person, face) for face in faces]

    def _add_one(self, person: int, face: NewFace) -> Added:
        if face.sha256 is not None:
            existing = self._db.face_by_sha(person, face.sha256)
            if existing is not None:
                return Added(existing, False)
        face_id = self._db.insert_face(
            person,
            face.embedding,
            sha256=face.sha256,
            source=face.source,
            box=None if face.box is None else face.box.to_dict(),
            quality=dict(face.quality),
            thumbnail=face.thumbnail,
            created=face.created,
        )
        return Added(face_id, True)

    def remove_face(self, face_id: int) -> str:
        with self._write():
            return self._db.remove_face(int(face_id))

    def delete_person(self, name: str) -> int:
        with self._write():
            return self._db.delete_person(name)

    def rename_person(self, old: str, new: str) -> None:
        with self._write():
            self._db.rename(old, new)

    def merge_people(self, source: str, target: str) -> int:
        with self._write():
            return self._db.merge(source, target)

    def add_to_group(self, name: str, group: str) -> None:
        with self._write():
            self._db.join(self._db.person_id(name), group)

    def remove_from_group(self, name: str, group: str) -> bool:
        with self._write():
            return self._db.leave(self._db.person_id(name), group)

    def import_people(self, records: Iterable[PersonRecord]) -> ImportSummary:
        people = created = faces = skipped = 0
        with self._write():
            for record in records:
                people += 1
                person = self._db.find_person(record.name)
                if person is None:
                    person = self._db.create_person(record.name, record.metadata, record.created)
                    created += 1
                elif record.metadata:
                    self._db.merge_metadata(person, record.metadata)
                for group in record.groups:
                    self._db.join(person, group)
                for face in record.faces:
                    if self._add_one(person, face).new:
                        faces += 1
                    else:
                        skipped += 1
        return ImportSummary(people=people, created=created, faces=faces, skipped=skipped)

    # -- reads ------------------------------------------------------------------------------
    def has_person(self, name: str) -> bool:
        with self._lock:
            return self._db.find_person(name) is not None

    def known_files(self, name: str, sha256s: Iterable[str]) -> dict[str, int]:
        with self._lock:
            person = self._db.find_person(name)
            return {} if person is None else self._db.known_files(person, sha256s)

    def people(self) -> list[PersonSummary]:
        with self._lock, self._db.snapshot():
            return [
                PersonSummary(row["name"], int(row["faces"]), self._db.groups_of(row["id"]), row["created"])
                for row in self._db.people_rows()
            ]

    def person(self, name: str) -> PersonDetails:
        with self._lock, self._db.snapshot():
            row = self._db.person_row(name)
            faces = tuple(_face_info(face) for face in self._db.face_rows(row["id"]))
            return PersonDetails(
                name=row["name"],
                metadata=json.loads(row["metadata"]),
                groups=self._db.groups_of(row["id"]),
                created=row["created"],
                faces=faces,
            )

    def groups(self) -> list[GroupSummary]:
        with self._lock:
            return [GroupSummary(name, people) for name, people in self._db.group_rows()]

    def thumbnail(self, face_id: int) -> bytes | None:
        with self._lock:
            return self._db.thumbnail(int(face_id))

    def embeddings(self, names: Iterable[str]) -> dict[str, np.ndarray]:
        with self._lock, self._db.snapshot():
            return self._db.vectors_of(names)

    def export_people(self) -> Iterator[PersonRecord]:
        with self._lock, self._db.snapshot():
            rows = self._db.people_rows()
            records = [self._export_one(row) for row in rows]
        yield from records

    def _export_one(self, row: Any) -> PersonRecord:
        faces = tuple(
            NewFace(
                embedding=from_blob(face["embedding"], self.dim),
                sha256=face["sha256"],
                source=face["source"],
                box=None if face["box"] is None else Box(**json.loads(face["box"])),
                quality=json.loads(face["quality"]),
                created=face["created"],
            )
            for face in self._db.export_rows(row["id"])
        )
        return PersonRecord(
            name=row["name"],
            metadata=json.loads(row["metadata"]),
            groups=self._db.groups_of(row["id"]),
            created=row["created"],
            faces=faces,
        )

    # -- search -----------------------------------------------------------------------------
    def scope(self, group: str | None = None) -> tuple[int, int, int]:
        with self._lock:
            return self._db.scope(group)

    def search(self, vectors: np.ndarray, k: int, *, group: str | None = None) -> list[list[Hit]]:
        queries = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            index = self._current()
            subset = None
            if group is not None:
                subset = self._db.group_face_ids(group)
                if not len(subset):
                    return [[] for _ in queries]
            scores, ids = index.search(queries, k, subset)
            names = self._db.names_of_faces({int(i) for i in ids.ravel() if i >= 0})
        # A face removed by another process since the index was refreshed has no name: drop it.
        return [
            [Hit(int(i), names[int(i)], float(s)) for s, i in zip(row_scores, row_ids) if int(i) in names]
            for row_scores, row_ids in zip(scores, ids)
        ]

    # -- upkeep -----------------------------------------------------------------------------
    def check(self) -> CheckReport:
        with self._lock:
            with self._db.snapshot():
                generation = self._db.generation()
                people, faces = self._db.counts()
                db_ids = self._db.face_ids()
            problems: list[str] = []
            index_generation: int | None = None
            indexed = 0
            try:
                index, header = read_index_file(self.index_path)
            except IndexFileError as exc:
                state = str(exc)
                problems.append(f"index file {state}")
            else:
                index_generation = header.generation
                indexed = index.count
                problem = _header_problem(header, self, generation, faces)
                state = "ok"
                if problem:
                    state = "stale" if problem.startswith("stale") else f"corrupt: {problem}"
                    problems.append(f"index file is {problem}")
                elif not np.array_equal(np.sort(index.ids()), db_ids):
                    state = "corrupt: holds other faces than the database"
                    problems.append("index file holds other faces than the database")
            if self._index is not None and self._index_generation == generation:
                if not np.array_equal(np.sort(self._index.ids()), db_ids):
                    problems.append("the index in memory holds other faces than the database")
            return CheckReport(
                people=people,
                faces=faces,
                indexed=indexed,
                generation=generation,
                index_generation=index_generation,
                index_file=state,
                problems=tuple(problems),
            )

    def rebuild(self) -> CheckReport:
        with self._lock:
            self._rebuild()
        return self.check()

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._index = None


class _Write:
    """``with store._write():`` — a transaction whose changes the index follows once committed."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def __enter__(self) -> Changes:
        self.store._lock.acquire()
        try:
            self._transaction = self.store._db.transaction()
            self._changes = self._transaction.__enter__()
            return self._changes
        except BaseException:
            self.store._lock.release()
            raise

    def __exit__(self, kind: Any, error: Any, trace: Any) -> bool:
        try:
            suppressed = bool(self._transaction.__exit__(kind, error, trace))
            if kind is None:
                self.store._follow(self._changes)
            return suppressed
        finally:
            self.store._lock.release()


def _header_problem(header: Any, store: LocalStore, generation: int, faces: int) -> str | None:
    if header.embedder != store.embedder or header.dim != store.dim:
        return f"for embedder {header.embedder!r} ({header.dim}-D)"
    if header.kind != store.index_kind:
        return f"a {header.kind!r} index where {store.index_kind!r} is configured"
    if header.generation != generation:
        return f"stale (generation {header.generation}, database at {generation})"
    if header.count != faces:
        return f"stale ({header.count} faces, database has {faces})"
    return None


def _face_info(row: Any) -> FaceInfo:
    quality = json.loads(row["quality"]) if row["quality"] else {}
    return FaceInfo(
        id=int(row["id"]),
        person=row["person"],
        source=row["source"],
        sha256=row["sha256"],
        box=None if row["box"] is None else Box(**json.loads(row["box"])),
        quality=Quality.from_dict(quality) if quality else None,
        embedder=row["embedder"],
        created=row["created"],
        thumbnail=bool(row["has_thumbnail"]),
    )
