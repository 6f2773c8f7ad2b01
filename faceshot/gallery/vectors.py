"""The vectors side of a gallery: an index that follows the records' change log.

The records (:mod:`faceshot.gallery.database`) are the truth; an index is derived data, one
*consumer* of the change log with a cursor of its own. Before every search
:meth:`FollowingIndex.catch_up` applies the log rows newer than its cursor (faces added and
removed; who a face belongs to and which groups they are in are read from the records at search
time), so another process's write costs the next search the rows it wrote, not a rebuild.

A process whose index kind is ``auto``'s choice follows the policy as the gallery grows: once
:func:`~faceshot.gallery.index.resolve_index_kind` chooses another kind for the faces it holds, the
index of that kind is built the same way. An index that asks to be built again (:attr:`~faceshot.gallery.index.VectorIndex.wants_rebuild`:
an IVF index grown past what it was trained on, an HNSW index full of tombstones) is rebuilt in a
background thread from a snapshot of the records, over its own connection, while searches go on
with the current index; the next catch-up swaps the new one in and applies the rows written
since its snapshot.

The index is saved to ``<db>.faiss`` as a *snapshot* with the cursor it reached, only when enough
rows have been applied since the last one (:data:`SNAPSHOT_ROWS`) or it is older than
:data:`SNAPSHOT_SECONDS` — never on every write. Opening reads the snapshot and applies the rows
after it; a snapshot that is missing, damaged, of another embedder or index kind, newer than the
records, or older than the oldest row still in the log is not trusted, and the index is rebuilt
from the records. A gallery whose records are on a server (PostgreSQL) has no such file
(``path=None``): the index is built from the records when first needed, and never saved.

A gallery's vectors may live in a vector engine instead (a :class:`VectorEngine`, opened by URL
with :func:`faceshot.gallery.location.open_vectors`: ``faiss``, this process's index, is the
default; ``milvus://host:port?collection=...`` is :mod:`faceshot.gallery.milvus`). An engine is a durable consumer of the same log, with its
cursor kept in the records.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceshot.gallery.database import FACE_ADDED, FACE_REMOVED, Database
from faceshot.gallery.index import (
    IndexFileError,
    IndexHeader,
    VectorIndex,
    create_index,
    AUTO,
    AUTO_KINDS,
    parse_kind,
    read_index_file,
    resolve_index_kind,
    write_index_file,
)

__all__ = [
    "FollowingIndex", "FollowerStats", "SNAPSHOT_ROWS", "SNAPSHOT_SECONDS", "LOG_KEEP", "VectorEngine", "EngineState",
]

log = logging.getLogger(__name__)

#: Log rows applied since the last snapshot that make the next catch-up save one (or a tenth of
#: the faces indexed, if more): reopening then applies at most this many rows.
SNAPSHOT_ROWS = 1000
#: A snapshot older than this (seconds) with rows applied since is saved at the next catch-up.
SNAPSHOT_SECONDS = 300.0
#: Log rows always kept when pruning, so processes that keep an index in memory rarely rebuild.
LOG_KEEP = 10_000


@dataclass
class FollowerStats:
    """What an index has done since it was opened (tests and benchmarks read it)."""

    applied: int = 0
    rebuilds: int = 0
    background_rebuilds: int = 0
    snapshots: int = 0
    opened_from_file: bool = False


class FollowingIndex:
    """A :class:`~faceshot.gallery.index.VectorIndex` kept up to date from the change log.

    Not thread-safe on its own: the store calls it under its lock, inside a read snapshot of the
    records, so the faces it searches and the names it reports come from one committed state.
    """

    def __init__(self, db: Database, path: Path | None, *, kind: str, embedder: str, dim: int, auto: bool = False) -> None:
        self.db = db
        self.auto = auto  # the kind was auto's choice: follow the policy as the gallery grows
        self.path = path
        self.name = str(path) if path is not None else str(db.location)  # what log messages name
        self.kind = kind
        self.embedder = embedder
        self.dim = dim
        self.structure, self.params = parse_kind(kind)
        self.consumer = "memory" if path is None else f"index-file:{path.name}"
        self._background: threading.Thread | None = None
        self._built: tuple[VectorIndex, int, str] | None = None
        self._built_lock = threading.Lock()
        self.index: VectorIndex | None = None
        self.cursor = -1
        self.stats = FollowerStats()
        self._saved_cursor = -1
        self._saved_at = 0.0

    @property
    def opened(self) -> bool:
        return self.index is not None

    def catch_up(self) -> VectorIndex:
        """Apply the log rows after the cursor (opening or rebuilding first when needed).

        Call inside ``db.snapshot()``; returns the index, current with that snapshot.
        """
        if self.index is None:
            self._open()
        assert self.index is not None
        self._swap_in_built()
        head = self.db.head()
        if self.cursor == head:
            self._maybe_rebuild_in_background()
            return self.index
        if self.cursor > head or self.cursor < self.db.log_start():
            self.rebuild("it is not covered by the change log")
            return self.index
        rows = self.db.changes(self.cursor, ops=(FACE_ADDED, FACE_REMOVED))
        # Face ids are never reused and the index holds exactly the faces of its cursor, so the
        # net effect of a run of rows is: remove the faces removed, add the faces added that still
        # exist in the records. (Removing from a flat index is a scan of it: only when needed.)
        removed = np.array(sorted({row.face for row in rows if row.op == FACE_REMOVED}), dtype=np.int64)
        if len(removed):
            self.index.remove(removed)
        ids, vectors = self.db.vectors_of_faces(row.face for row in rows if row.op == FACE_ADDED)
        self.index.add(ids, vectors)
        self.cursor = head
        self.stats.applied += len(rows)
        if self._snapshot_due():
            self.save()
        self._maybe_rebuild_in_background()
        return self.index

    # -- rebuilding while searches go on --------------------------------------------------------
    def _maybe_rebuild_in_background(self) -> None:
        assert self.index is not None
        why = self.index.wants_rebuild
        kind = self.kind
        if self.auto:
            # Down again only at half the size that made it grow: no rebuild back and forth at the limit.
            chosen = resolve_index_kind(AUTO, self.index.count, self.dim)
            if chosen != self.kind and resolve_index_kind(AUTO, self.index.count * 2, self.dim) != self.kind:
                why, kind = f"auto chooses {chosen!r} at {self.index.count} faces", chosen
        if why is None or (self._background is not None and self._background.is_alive()):
            return
        log.info("%s: rebuilding the index in the background (%s)", self.name, why)
        self._background = threading.Thread(
            target=self._build_from_records, args=(kind,), name="faceshot-index-rebuild", daemon=True
        )
        self._background.start()

    def _build_from_records(self, kind: str) -> None:
        try:
            db = self.db.reopen()
        except Exception as exc:  # the records are read again at the next trigger
            log.warning("%s: background rebuild could not open the records (%s)", self.name, exc)
            return
        try:
            with db.snapshot():
                head = db.head()
                ids, vectors = db.all_vectors()
            index = create_index(kind, self.dim)
            index.add(ids, vectors)
        except Exception as exc:
            log.warning("%s: background rebuild failed (%s)", self.name, exc)
            return
        finally:
            db.close()
        with self._built_lock:
            self._built = (index, head, kind)

    def _swap_in_built(self) -> None:
        with self._built_lock:
            built, self._built = self._built, None
        if built is None:
            return
        index, cursor, kind = built
        if cursor < self.db.log_start():
            return  # the log moved past it meanwhile: the next trigger builds again
        # The new index is current as of `cursor`; the caller applies the rows after it.
        self.index, self.cursor = index, cursor
        self.kind, (self.structure, self.params) = kind, parse_kind(kind)
        self.stats.background_rebuilds += 1
        self._saved_cursor = -1  # a snapshot of the new index is due
        log.info("%s: swapped in the index rebuilt at change %d", self.name, cursor)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background rebuild to finish (tests, benchmarks); True when none is running."""
        thread = self._background
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _open(self) -> None:
        if self.path is None:
            self.rebuild("this process has not built it yet")
            return
        try:
            index, header = read_index_file(self.path)
        except IndexFileError as exc:
            self.rebuild(f"the index file is {exc}")
            return
        problem = self._header_problem(header)
        if problem:
            self.rebuild(f"the index file is {problem}")
            return
        if header.kind != self.structure:
            # auto's choice moved (the gallery's size, or faceshot's policy): the saved index serves
            # until the background rebuild, as when the gallery grows past a limit while open.
            log.info("%s: keeping the saved %r index (auto now chooses %r; switched in the background with a margin)", self.name, header.kind, self.kind)
            self.kind, (self.structure, self.params) = header.kind, parse_kind(header.kind)
        index.set_params(self.params)
        self.index, self.cursor = index, header.generation
        self._saved_cursor, self._saved_at = header.generation, time.monotonic()
        self.stats.opened_from_file = True

    def _header_problem(self, header: IndexHeader) -> str | None:
        if header.embedder != self.embedder or header.dim != self.dim:
            return f"for embedder {header.embedder!r} ({header.dim}-D)"
        if header.kind != self.structure and not (self.auto and header.kind in AUTO_KINDS):
            return f"a {header.kind!r} index where {self.structure!r} is configured"
        head = self.db.head()
        if header.generation > head:
            return f"newer than the database (change {header.generation}, database at {head})"
        if header.generation < self.db.log_start():
            return f"older than the change log (change {header.generation}, log starts after {self.db.log_start()})"
        return None

    def rebuild(self, why: str = "asked") -> None:
        """Build the index from the records' current state and save it. Call inside a snapshot."""
        log.info("%s: building the index from the database (%s)", self.name, why)
        head = self.db.head()
        ids, vectors = self.db.all_vectors()
        index = create_index(self.kind, self.dim)
        index.add(ids, vectors)
        self.index, self.cursor = index, head
        self.stats.rebuilds += 1
        self.save()

    def _snapshot_due(self) -> bool:
        assert self.index is not None
        if self.path is None:
            return False
        behind = self.cursor - self._saved_cursor
        if behind <= 0:
            return False
        return behind >= max(SNAPSHOT_ROWS, self.index.count // 10) or time.monotonic() - self._saved_at >= SNAPSHOT_SECONDS

    def save(self) -> None:
        """Write the snapshot file (atomically) with the cursor it reached."""
        assert self.index is not None
        if self.path is None:
            return
        try:
            write_index_file(self.path, self.index, embedder=self.embedder, generation=self.cursor)
        except OSError as exc:
            # The records hold every write; the index is rebuilt or caught up from them next time.
            log.warning("%s: could not save the index (%s)", self.path, exc)
            return
        self._saved_cursor, self._saved_at = self.cursor, time.monotonic()
        self.stats.snapshots += 1

    def flush(self) -> None:
        """Save a snapshot if rows were applied since the last one (called on close)."""
        if self.index is not None and self.cursor > self._saved_cursor and self._snapshot_due():
            self.save()


# -- vector engines outside this process ------------------------------------------------------------


@dataclass(frozen=True)
class EngineState:
    """What :meth:`VectorEngine.check` found: rows the engine holds, the log entry it has applied,
    a one-line state, and problems (empty when the engine agrees with the records)."""

    indexed: int
    cursor: int | None
    state: str
    problems: tuple[str, ...] = ()


class VectorEngine(ABC):
    """The vectors of a gallery kept in an engine outside this process, following the change log.

    The store calls :meth:`catch_up` before every search, outside any records transaction (an engine
    may take the records' write lock to apply entries in order), then :meth:`search` inside the
    read snapshot whose names it reports, so the faces returned are filtered against one
    committed state. Groups of at most :attr:`exact_group` faces are scored exactly by the store
    over the records' vectors, without the engine.
    """

    #: The scheme of its URLs.
    name: str
    #: Groups of at most this many faces are searched exactly over the records' vectors.
    exact_group: int

    @abstractmethod
    def catch_up(self) -> None:
        """Apply the log entries after the engine's cursor (rebuilding first when it is not covered)."""

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, *, groups: list[int] | None = None, subset: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best faces per query, ``(scores, ids)`` ``(q, k)`` float32/int64 (``-1`` pads).

        ``groups``: the ids of the groups to search in (their union), with ``subset``, their
        faces' ids in the records (ascending); every id returned is among them.
        """

    @abstractmethod
    def check(self) -> EngineState:
        """Compare the engine with the records, changing nothing."""

    @abstractmethod
    def rebuild(self) -> None:
        """Build the engine's copy again from the records."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""
