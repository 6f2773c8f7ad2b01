"""The records (a SQLite file, or a PostgreSQL database) with a FAISS index in this process answering searches.

The index is derived data (:mod:`faceshot.gallery.vectors`): opened only when a search needs it,
from the snapshot ``<db>.faiss`` plus the change-log rows written since, and caught up with the
log before every search, so every process sees every other's writes at its next search without
rebuilding. A write touches only the records: the rows and their change-log rows, in one transaction.

Over PostgreSQL (several hosts, one gallery) there is no file beside the records to keep a
snapshot in that every host could trust, so each process builds its index from the records at its
first search and then follows the log like any other (BENCHMARKS.md: how long that build takes).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from faceshot.errors import ConfigError, FaceshotError, GalleryError, NotFound
from faceshot.gallery.database import RESERVED_SETTINGS, Change, Database, from_blob
from faceshot.gallery.dialect import record_errors
from faceshot.gallery.location import Location, check_vectors, open_vectors, parse_location
from faceshot.gallery.index import (
    AUTO,
    AUTO_KINDS,
    FaissIndex,
    GroupVectors,
    IndexFileError,
    Subset,
    parse_kind,
    read_index_file,
    resolve_index_kind,
)
from faceshot.gallery.results import (
    CheckReport,
    FaceInfo,
    GroupSummary,
    ImportSummary,
    PersonDetails,
    PersonSummary,
)
from faceshot.gallery.store import Added, Hit, NewFace, PersonRecord, Store
from faceshot.gallery.templates import Templates
from faceshot.gallery.vectors import LOG_KEEP, FollowerStats, FollowingIndex, VectorEngine
from faceshot.quality import Quality
from faceshot.results import Box

__all__ = ["LocalStore", "index_path", "INDEX_SETTING"]

log = logging.getLogger(__name__)

#: The gallery setting that names the index kind (``"auto"`` when unset).
INDEX_SETTING = "index"
#: A group of at most this many faces is searched over its own vectors, whatever the index, the
#: vectors kept in memory until the change log moves (:class:`~faceshot.gallery.index.GroupVectors`:
#: a flat scan, or an 8-bit scan with the best rescored exactly), so a group's decisions are exact
#: search's. Larger groups are searched inside the index with a selector.
EXACT_GROUP = 100_000
#: At most this many group vectors are kept in memory (about 256 MB of 128-D float32, and a quarter
#: more for the 8-bit codes of groups above CODED_SCAN_ABOVE faces).
GROUP_CACHE_FACES = 500_000
#: People whose vectors are kept for mean templates between writes.
TEMPLATE_CACHE = 100_000


#: People read per query page by :meth:`LocalStore.export_people` (about 1 MB of 128-D vectors at
#: one face a person): memory for an export or a migration is one page, whatever the gallery's size.
EXPORT_PAGE = 2000

#: What check and index_info say of the index file of a gallery whose records are on a server.
NO_FILE = "none: each process builds its index from the records at its first search"


def index_path(path: Path) -> Path:
    """Where the index of the gallery database at ``path`` is saved."""
    return path.with_name(path.name + ".faiss")


class LocalStore(Store):
    """A gallery in one SQLite file (the records) plus ``<file>.faiss`` (a derived index snapshot),
    or in a PostgreSQL database (``path``: its URL or :class:`~faceshot.gallery.location.Location`)
    with the index in this process only.

    ``embedder``/``dim`` name the vectors this store holds; opening a file made with another
    embedder raises :class:`~faceshot.errors.EmbedderMismatchError`. ``index``: the index kind for
    this process (by default the gallery's ``index`` setting, else ``"auto"``, which is exact
    search today). ``timeout``: how long a write waits for another process's write (seconds)
    before raising :class:`~faceshot.errors.GalleryBusyError`. ``create=False`` refuses a missing
    file instead of creating it. Safe to use from several threads (one lock) and several
    processes (SQLite's locks and the change log). ``vectors``: where the face vectors are searched,
    ``"faiss"`` (this process's FAISS index) or a vector engine's URL
    (``milvus://host:port?collection=NAME``, see :func:`~faceshot.gallery.location.open_vectors`),
    opened over this store's records; by default the location's ``vectors`` parameter.
    """

    def __init__(
        self,
        path: "str | os.PathLike[str] | Location",
        *,
        embedder: str,
        dim: int,
        index: str | None = None,
        timeout: float = 60.0,
        create: bool = True,
        vectors: str | None = None,
    ) -> None:
        self.location = parse_location(path)
        self.path = self.location.path if self.location.is_file else None
        self.embedder = embedder
        self.dim = dim
        self.index_path = None if self.path is None else index_path(self.path)
        if index is not None:
            resolve_index_kind(index, 0, dim)  # an unknown index kind fails here, before any file is touched
        check_vectors(self.location.vectors if vectors is None else vectors)  # before connecting to anything
        self._lock = threading.RLock()
        with record_errors(self.location):
            self._db = Database(self.location, embedder=embedder, dim=dim, timeout=timeout, create=create)
            self.index_kind = index or self._db.get_setting(INDEX_SETTING) or "auto"
        try:
            # An engine outside this process, following the same change log (None: the FAISS index).
            url = self.location.vectors if vectors is None else vectors
            self._engine = open_vectors(url, self._db, embedder=embedder, dim=dim)
        except BaseException:
            self._db.close()
            raise
        self._vectors: FollowingIndex | None = None
        self._scopes: dict[str | None, tuple[int, tuple[int, int, int]]] = {}
        self._groups: dict[str | tuple[str, ...], _Group] = {}
        # person -> face vectors, for mean templates; dropped whenever the log moves
        self._vectors_of: tuple[int, dict[str, np.ndarray]] = (-1, {})
        # every person's template, for mean aggregation, built at the first search that needs it
        self._templates: Templates | None = None

    def __repr__(self) -> str:
        return f"LocalStore({self.location.shown!r}, embedder={self.embedder!r})"

    @staticmethod
    def stored_embedder(path: "str | os.PathLike[str] | Location") -> str | None:
        """The embedder an existing gallery was made with (``None`` if it does not exist yet)."""
        return Database.stored_embedder(path)

    @property
    def stats(self) -> FollowerStats:
        """What this process's index has done (rows applied, rebuilds, snapshots saved)."""
        return self._vectors.stats if self._vectors is not None else FollowerStats()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self._lock, self._db.errors():
            yield

    # -- the derived index ------------------------------------------------------------------
    def _follower(self) -> FollowingIndex:
        if self._vectors is None:
            _, faces = self._db.counts()
            kind = resolve_index_kind(self.index_kind, faces, self.dim)
            self._vectors = FollowingIndex(
                self._db, self.index_path, kind=kind, embedder=self.embedder, dim=self.dim, auto=self.index_kind == "auto"
            )
        return self._vectors

    def _after_snapshot(self, snapshots_before: int) -> None:
        """Once a snapshot was saved: record its cursor, and drop log rows no consumer needs."""
        follower = self._vectors
        if follower is None or follower.stats.snapshots == snapshots_before:
            return
        try:
            with self._db.transaction():
                self._db.set_cursor(follower.consumer, follower.cursor)
                dropped = self._db.prune(LOG_KEEP)
        except FaceshotError as exc:  # busy or read-only: pruning can wait
            log.info("%s: log not pruned this time (%s)", self.location, exc)
            return
        if dropped:
            log.debug("%s: pruned %d change-log rows", self.location, dropped)

    def _write(self) -> "_Write":
        return _Write(self)

    # -- settings ---------------------------------------------------------------------------
    def get_setting(self, key: str) -> Any:
        with self._reading():
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
        with self._reading():
            return self._db.find_person(name) is not None

    def known_files(self, name: str, sha256s: Iterable[str]) -> dict[str, int]:
        with self._reading():
            person = self._db.find_person(name)
            return {} if person is None else self._db.known_files(person, sha256s)

    def faces_of_files(self, sha256s: Iterable[str]) -> dict[str, list[tuple[str, int, Box | None]]]:
        found: dict[str, list[tuple[str, int, Box | None]]] = {}
        with self._reading():
            for row in self._db.faces_of_files(sha256s):
                box = None if row["box"] is None else Box(**json.loads(row["box"]))
                found.setdefault(row["sha256"], []).append((row["person"], int(row["id"]), box))
        return found

    def people(self) -> list[PersonSummary]:
        with self._reading(), self._db.snapshot():
            return [
                PersonSummary(row["name"], int(row["faces"]), self._db.groups_of(row["id"]), row["created"])
                for row in self._db.people_rows()
            ]

    def person(self, name: str) -> PersonDetails:
        with self._reading(), self._db.snapshot():
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
        with self._reading():
            return [GroupSummary(name, people) for name, people in self._db.group_rows()]

    def thumbnail(self, face_id: int) -> bytes | None:
        with self._reading():
            return self._db.thumbnail(int(face_id))

    def person_ids(self, names: Iterable[str]) -> dict[str, int]:
        """Each named person's stable id (the service's ``person_id``); unknown names are left out."""
        with self._reading(), self._db.snapshot():
            return self._db.person_ids(names)

    def embeddings(self, names: Iterable[str]) -> dict[str, np.ndarray]:
        # Mean aggregation asks for every candidate's vectors at every identification: they are
        # kept (up to TEMPLATE_CACHE people) until the change log moves, as the scopes are.
        names = list(dict.fromkeys(names))
        with self._reading(), self._db.snapshot():
            head = self._db.head()
            cached_head, cache = self._vectors_of
            if cached_head != head or len(cache) > TEMPLATE_CACHE:
                cache = {}
                self._vectors_of = (head, cache)
            missing = [name for name in names if name not in cache]
            if missing:
                cache.update(self._db.vectors_of(missing))
            return {name: cache[name] for name in names}

    def export_people(self, *, thumbnails: bool = False) -> Iterator[PersonRecord]:
        """Every person by name, with their faces; read through a connection of its own, in one
        snapshot (a consistent copy, while this store goes on serving), :data:`EXPORT_PAGE` people
        at a time, so memory holds one page, not the gallery."""
        with self._reading():
            db = self._db.reopen()
        try:
            with db.errors(), db.snapshot():
                after: str | None = None
                while True:
                    page = db.export_page(after, EXPORT_PAGE, thumbnails=thumbnails)
                    for row, faces, groups in page:
                        yield self._export_one(row, faces, groups, thumbnails)
                    if len(page) < EXPORT_PAGE:
                        return
                    after = page[-1][0]["name"]
        finally:
            db.close()

    def _export_one(self, row: Any, faces: list[Any], groups: tuple[str, ...], thumbnails: bool) -> PersonRecord:
        return PersonRecord(
            name=row["name"],
            metadata=json.loads(row["metadata"]),
            groups=groups,
            created=row["created"],
            faces=tuple(
                NewFace(
                    embedding=from_blob(face["embedding"], self.dim),
                    sha256=face["sha256"],
                    source=face["source"],
                    box=None if face["box"] is None else Box(**json.loads(face["box"])),
                    quality=json.loads(face["quality"]),
                    created=face["created"],
                    thumbnail=bytes(face["thumbnail"]) if thumbnails and face["thumbnail"] is not None else None,
                )
                for face in faces
            ),
        )

    # -- the change log ---------------------------------------------------------------------
    def head(self) -> int:
        with self._reading():
            return self._db.head()

    def changes(self, after: int, limit: int | None = None) -> list[Change]:
        with self._reading(), self._db.snapshot():
            if after < self._db.log_start():
                raise GalleryError(
                    f"{self.location}: the change log no longer holds the entries after {after} "
                    f"(it starts after {self._db.log_start()}); rebuild from the records"
                )
            return self._db.changes(after, limit=limit)

    # -- search -----------------------------------------------------------------------------
    def scope(self, group: str | Sequence[str] | None = None) -> tuple[int, int, int]:
        # Counting a million faces by person takes a noticeable fraction of a second, and every
        # identification asks: the answer is kept until the change log moves (any write does).
        group = _group_key(group)
        with self._reading(), self._db.snapshot():
            head = self._db.head()
            cached = self._scopes.get(group)
            if cached is not None and cached[0] == head:
                return cached[1]
            answer = self._db.scope(group)
            if len(self._scopes) > 256:
                self._scopes.clear()
            self._scopes[group] = (head, answer)
            return answer

    def search(self, vectors: np.ndarray, k: int, *, group: str | Sequence[str] | None = None) -> list[list[Hit]]:
        """See :meth:`Store.search`. How the neighbours are found depends on the index and the group:

        - a group of at most :data:`EXACT_GROUP` faces is searched over its own vectors (from the
          index when it keeps them, else from the records), whatever the index, with exact scores
          (above ``CODED_SCAN_ABOVE`` faces an 8-bit scan picks the candidates first);
        - a larger group is searched inside the index with a selector, the search widened
          (``efSearch``/``nprobe``) by how small a share of the gallery the group is, up to 8×;
        - an index of compressed codes returns ``rerank`` candidates, rescored exactly against the
          records' vectors, so the scores every decision uses are exact.
        """
        queries = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if self._engine is not None:
            return self._search_engine(self._engine, queries, k, _group_key(group))
        with self._reading():
            follower = self._follower()
            snapshots = follower.stats.snapshots
            with self._db.snapshot():
                index = follower.catch_up()
                subset = None
                group = _group_key(group)
                if group is not None:
                    subset = self._group_faces(group)
                    if not len(subset):
                        return [[] for _ in queries]
                if subset is not None and len(subset) <= EXACT_GROUP:
                    scores, ids = self._exact_over(index, queries, k, subset, group)
                else:
                    wanted = index.candidates(k) if isinstance(index, FaissIndex) else k
                    restrict = None if subset is None else self._groups[group].subset  # type: ignore[index]
                    if restrict is not None and isinstance(index, FaissIndex):
                        widen = float(min(8.0, max(1.0, index.count / len(restrict))))
                        scores, ids = index.search(queries, wanted, restrict, widen=widen)
                    else:
                        scores, ids = index.search(queries, wanted, restrict)
                    if not index.exact_scores:
                        scores, ids = self._rescore(queries, ids, k)
                names = self._db.names_of_faces({int(i) for i in ids.ravel() if i >= 0})
            self._after_snapshot(snapshots)
        # Filtered against the records of the same snapshot: a face without a person is never returned.
        return [
            [Hit(int(i), names[int(i)], float(s)) for s, i in zip(row_scores, row_ids) if int(i) in names]
            for row_scores, row_ids in zip(scores, ids)
        ]

    def search_people(
        self, vectors: np.ndarray, k: int, *, group: str | Sequence[str] | None = None
    ) -> list[list[tuple[str, float]]]:
        """See :meth:`Store.search_people`: one search over the people's templates, kept in an index
        of their own that follows the change log (:mod:`faceshot.gallery.templates`). While nobody in
        the scope has more than one face a template is that face's vector, and the faces' index
        answers (no templates are kept). With a vector engine, the store's default."""
        queries = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        group = _group_key(group)
        faces, most, _ = self.scope(group)
        if self._engine is not None or faces == 0:
            return super().search_people(queries, k, group=group)
        if most <= 1:
            return [[(hit.person, hit.score) for hit in row] for row in self.search(queries, k, group=group)]
        with self._reading():
            if self._templates is None:
                self._templates = Templates(self._db, kind=self.index_kind, dim=self.dim)
            with self._db.snapshot():
                self._templates.catch_up()
                among = None if group is None else self._db.group_people(group)
                scores, people = self._templates.search(queries, k, among)
                names = self._db.names_of_people({int(p) for p in people.ravel() if p >= 0})
        # Filtered against the records of the same snapshot: a deleted person is never returned.
        return [
            [(names[int(p)], float(score)) for score, p in zip(row_scores, row_people) if int(p) in names]
            for row_scores, row_people in zip(scores, people)
        ]

    def _search_engine(
        self, engine: VectorEngine, queries: np.ndarray, k: int, group: str | tuple[str, ...] | None
    ) -> list[list[Hit]]:
        """:meth:`search` with a vector engine: a group of at most ``engine.exact_group`` faces is
        scored exactly over the records' vectors; else the engine searches, restricted to the group."""
        with self._reading():
            engine.catch_up()  # outside the snapshot: it may take the write lock to apply the log
            with self._db.snapshot():
                subset = group_ids = None
                if group is not None:
                    group_ids = self._db.group_ids(group)
                    subset = self._group_faces(group)
                    if not len(subset):
                        return [[] for _ in queries]
                if subset is not None and len(subset) <= engine.exact_group:
                    scores, ids = self._exact_over(None, queries, k, subset, group)
                else:
                    scores, ids = engine.search(queries, k, groups=group_ids, subset=subset)
                names = self._db.names_of_faces({int(i) for i in ids.ravel() if i >= 0})
        return [
            [Hit(int(i), names[int(i)], float(s)) for s, i in zip(row_scores, row_ids) if int(i) in names]
            for row_scores, row_ids in zip(scores, ids)
        ]

    def _group_faces(self, group: str | tuple[str, ...]) -> np.ndarray:
        """The face ids of a group's members (sorted), kept until the change log moves: reading
        100,000 ids from SQLite costs tens of milliseconds, more than the search itself."""
        head = self._db.head()
        cached = self._groups.get(group)
        if cached is not None and cached.head == head:
            return cached.ids
        ids = np.unique(self._db.group_face_ids(group))
        if len(self._groups) >= 64 or (self._groups and next(iter(self._groups.values())).head != head):
            self._groups.clear()
        self._groups[group] = _Group(head, ids, Subset(ids))
        return ids

    def _exact_over(
        self, index: Any, queries: np.ndarray, k: int, subset: np.ndarray, group: str | tuple[str, ...] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best of ``subset`` by exact score (a group: cheaper than any index), with the
        group's vectors kept for the next search until the change log moves (:class:`GroupVectors`)."""
        cached = self._groups.get(group) if group is not None else None
        if cached is not None and cached.held is not None:
            return cached.held.search(queries, k)
        vectors = index.vectors(subset) if index is not None and index.exact_scores else None
        if vectors is None:
            found, vectors = self._db.vectors_of_faces(subset)
            assert np.array_equal(found, subset)  # read in the same snapshot as the ids
        if cached is None:
            return GroupVectors(subset, vectors, coded=False).search(queries, k)
        kept = sum(len(entry.held) for entry in self._groups.values() if entry.held is not None)
        for other, entry in self._groups.items():  # oldest first, until the new vectors fit
            if kept + len(subset) <= GROUP_CACHE_FACES:
                break
            if other != group and entry.held is not None:
                kept -= len(entry.held)
                entry.held = None
        if kept + len(subset) > GROUP_CACHE_FACES:
            return GroupVectors(subset, vectors, coded=False).search(queries, k)
        cached.held = GroupVectors(subset, vectors)
        return cached.held.search(queries, k)

    def _rescore(self, queries: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores for the candidates a compressed index found, best ``k`` first."""
        found, held = self._db.vectors_of_faces(ids[ids >= 0].tolist())
        if not len(found):
            return np.full((len(queries), 1), -np.inf, np.float32), np.full((len(queries), 1), -1, np.int64)
        rows = np.minimum(np.searchsorted(found, ids), len(found) - 1)  # found is ascending
        valid = (ids >= 0) & (found[rows] == ids)
        scores = np.full(ids.shape, -np.inf, np.float32)
        for q in range(len(ids)):
            scores[q] = np.where(valid[q], held[rows[q]] @ queries[q], -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best_ids = np.take_along_axis(np.where(np.isfinite(scores), ids, -1), order, 1)
        return np.take_along_axis(scores, order, 1), best_ids

    # -- the index kind ----------------------------------------------------------------------
    def index_info(self) -> dict[str, Any]:
        """What index this process searches with: the configured kind (``auto`` or a named one),
        what it resolves to at the current size, the faces in the gallery, and the saved index
        file's kind, count and change (read and checksummed; nothing is built)."""
        with self._reading():
            _, faces = self._db.counts()
            info: dict[str, Any] = {
                "configured": self.index_kind,
                "stored": self._db.get_setting(INDEX_SETTING) or "auto",
                "resolves_to": resolve_index_kind(self.index_kind, faces, self.dim),
                "faces": faces,
            }
            if self.index_path is None:
                info["file"] = NO_FILE
                return info
            try:
                _, header = read_index_file(self.index_path)
                info["file"] = {"kind": header.kind, "count": header.count, "generation": header.generation}
            except IndexFileError as exc:
                info["file"] = str(exc)
            return info

    def set_index(self, kind: str) -> str:
        """Store ``kind`` as the gallery's index (every process uses it from its next open) and use
        it here at once; the index is built at the next search. Returns what it resolves to now.

        Raises :class:`~faceshot.errors.ConfigError` for a kind FAISS cannot build.
        """
        with self._reading():
            _, faces = self._db.counts()
        resolved = resolve_index_kind(kind, faces, self.dim)
        with self._write():
            self._db.set_setting(INDEX_SETTING, None if kind == "auto" else kind)
        with self._lock:
            self.index_kind = kind
            self._vectors = None  # the next search opens (or builds) the index of the new kind
            self._templates = None
        return resolved

    # -- upkeep -----------------------------------------------------------------------------
    def check(self) -> CheckReport:
        """Compare the records with the saved snapshot (and this process's index), changing nothing.

        A snapshot behind the records is fine while the change log still holds the rows after it
        (the next search applies them); the report says how far behind it is. With a vector
        engine, the engine is compared instead of the snapshot file. Records on a server
        (PostgreSQL) have no snapshot file: this process's own index is compared, brought up to
        date first (built from the records if no search built it yet), and ``indexed`` counts it.
        """
        if self._engine is not None:
            with self._reading():
                state = self._engine.check()
                with self._db.snapshot():
                    people, faces = self._db.counts()
                    head = self._db.head()
                    collisions = self._db.name_collisions()
            problems = list(state.problems) + [
                f"names {' and '.join(repr(n) for n in names)} differ only in case or Unicode form "
                f"(stored before names were normalised): rename or merge them"
                for names in collisions
            ]
            return CheckReport(
                people=people, faces=faces, indexed=state.indexed, generation=head,
                index_generation=state.cursor, index_file=state.state, problems=tuple(problems),
            )
        with self._reading():
            with self._db.snapshot():
                head = self._db.head()
                log_start = self._db.log_start()
                people, faces = self._db.counts()
                db_ids = self._db.face_ids()
                problems: list[str] = []
                index_generation: int | None = None
                indexed = 0
                if self.index_path is None:
                    # Records on a server: no snapshot file, the index is this process's, built from
                    # the records at its first search; bring that one up to date and compare it.
                    in_memory = self._follower().catch_up()
                    index_generation, indexed = self._follower().cursor, in_memory.count
                    if not np.array_equal(np.sort(in_memory.ids()), db_ids):
                        problems.append("the index in memory holds other faces than the database")
                try:
                    if self.index_path is None:
                        raise IndexFileError(NO_FILE)
                    index, header = read_index_file(self.index_path)
                except IndexFileError as exc:
                    state = str(exc)
                    if state == "missing":  # derived data, not saved yet: built at the next search
                        state = "missing (built at the next search)"
                    elif state != NO_FILE:
                        problems.append(f"index file {state}")
                else:
                    index_generation = header.generation
                    indexed = index.count
                    state = "ok"
                    if header.embedder != self.embedder or header.dim != self.dim:
                        state = f"corrupt: for embedder {header.embedder!r}"
                    elif header.generation > head:
                        state = f"corrupt: newer than the database (change {header.generation} > {head})"
                    elif header.generation < log_start:
                        state = "stale: older than the change log (rebuilt at the next search)"
                    elif header.kind != parse_kind(resolve_index_kind(self.index_kind, faces, self.dim))[0] and not (
                        self.index_kind == AUTO and header.kind in AUTO_KINDS
                    ):
                        state = f"ok, a {header.kind!r} index where {self.index_kind!r} is configured (rebuilt at the next open)"
                    else:
                        expected = self._expected_ids(header.generation, index.ids())
                        if not np.array_equal(np.sort(expected), db_ids):
                            state = "corrupt: holds other faces than the database"
                        elif header.generation < head:
                            state = f"ok, {head - header.generation} change(s) behind (applied at the next search)"
                    if not state.startswith("ok"):
                        problems.append(f"index file is {state.split(': ', 1)[-1]}" if ": " in state else state)
                for names in self._db.name_collisions():
                    problems.append(
                        f"names {' and '.join(repr(n) for n in names)} differ only in case or Unicode form "
                        f"(stored before names were normalised): rename or merge them"
                    )
                follower = self._vectors
                if self.index_path is not None and follower is not None and follower.index is not None and follower.cursor == head:
                    if not np.array_equal(np.sort(follower.index.ids()), db_ids):
                        problems.append("the index in memory holds other faces than the database")
            return CheckReport(
                people=people,
                faces=faces,
                indexed=indexed,
                generation=head,
                index_generation=index_generation,
                index_file=state,
                problems=tuple(problems),
            )

    def _expected_ids(self, cursor: int, ids: np.ndarray) -> np.ndarray:
        """The faces a snapshot at ``cursor`` holding ``ids`` should hold once the log after it is applied."""
        from faceshot.gallery.database import FACE_ADDED, FACE_REMOVED

        held = set(int(i) for i in ids)
        for change in self._db.changes(cursor, ops=(FACE_ADDED, FACE_REMOVED)):
            if change.op == FACE_ADDED:
                held.add(int(change.face))
            else:
                held.discard(int(change.face))
        return np.array(sorted(held), dtype=np.int64)

    def rebuild(self) -> CheckReport:
        if self._engine is not None:
            with self._reading():
                self._engine.rebuild()
            return self.check()
        with self._reading():
            self._templates = None  # built again from the records at the next mean search
            follower = self._follower()
            snapshots = follower.stats.snapshots
            with self._db.snapshot():
                follower.rebuild("asked")
            self._after_snapshot(snapshots)
        return self.check()

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                try:
                    self._engine.close()
                finally:
                    self._engine = None
            if self._vectors is not None:
                try:
                    with self._db.errors(), self._db.snapshot():
                        self._vectors.flush()
                except FaceshotError:
                    pass  # derived data: the next open catches up from the records
            self._db.close()
            self._vectors = None
            self._templates = None


class _Write:
    """``with store._write():`` — one write transaction, its change-log rows included, under the lock."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store._lock.acquire()
        try:
            self._errors = self.store._db.errors()
            self._errors.__enter__()
            self._transaction = self.store._db.transaction()
            self._transaction.__enter__()
        except BaseException as exc:
            try:
                if hasattr(self, "_errors"):
                    self._errors.__exit__(type(exc), exc, exc.__traceback__)
            finally:
                self.store._lock.release()
            raise

    def __exit__(self, kind: Any, error: Any, trace: Any) -> bool:
        try:
            try:
                suppressed = bool(self._transaction.__exit__(kind, error, trace))
            except BaseException as exc:
                return bool(self._errors.__exit__(type(exc), exc, exc.__traceback__))
            if suppressed:
                return True
            return bool(self._errors.__exit__(kind, error, trace))
        finally:
            self.store._lock.release()


def _group_key(group: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
    """A group, or several (their union, in any order), as a key the caches can hold."""
    if group is None or isinstance(group, str):
        return group
    return tuple(sorted(set(group)))


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


@dataclass
class _Group:
    """What a search keeps of a group until the change log moves past ``head``: its face ids
    (sorted), their FAISS selector, and their vectors once the group was searched over them."""

    head: int
    ids: np.ndarray
    subset: Subset
    held: GroupVectors | None = None
