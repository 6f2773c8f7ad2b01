"""Per-person templates for ``mean`` aggregation: one search over people, not a query per candidate.

``mean`` scores a person by the probe against their *template*, the unit-length mean of their
face vectors (:func:`~faceshot.gallery.ranking.template`). :class:`Templates` keeps every person's
template in a :class:`~faceshot.gallery.index.VectorIndex` of its own, beside the faces' index,
so a ``mean`` identification is one search over people, whatever their number of faces.

Templates are derived data, like the faces' index, and follow the same change log with a cursor
of their own (the consistency contract, :mod:`faceshot.gallery.store`): before every search the
people named by the log entries after the cursor (a face added or removed, people merged,
deleted) get their templates computed again from the records of the same snapshot. So a write
changes the next search's templates, a deleted person is never returned, and the faces a merge
moves count for their new person at once. Joining or leaving a group changes no template: groups
are read from the records at search time.

Each version of a template is stored under a new id (ids are never reused): an index that keeps
tombstones (HNSW) brings a removed id's old vector back when the id is added again. The index is
of the kind the store's own would be at this many people (``auto``'s choice, or the kind set);
compressed kinds return candidates whose templates are computed exactly from the records, so
every decision is taken on exact scores. The templates are not saved: each process builds them
from the records at its first ``mean`` search that needs them (reading every vector once, as a
first search without an index file does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from faceshot.gallery.database import FACE_ADDED, FACE_REMOVED, PERSON_CHANGED, Database
from faceshot.gallery.index import AUTO, FaissIndex, Subset, VectorIndex, create_index, parse_kind, resolve_index_kind

__all__ = ["Templates", "TemplateStats", "templates_of"]

log = logging.getLogger(__name__)

#: A search among at most this many people (a group) scores their templates exactly, whatever the index.
EXACT_PEOPLE = 100_000


@dataclass
class TemplateStats:
    """What a :class:`Templates` has done (tests and benchmarks read it)."""

    builds: int = 0
    refreshed: int = 0


def templates_of(owners: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(people, templates)``: each person among ``owners`` (ascending, ``owners`` sorted) and the
    unit-length mean of their rows of ``vectors`` ``(n, dim)``, float32 (summed in float64)."""
    if not len(owners):
        return owners.astype(np.int64), np.zeros((0, vectors.shape[1]), np.float32)
    people, starts = np.unique(owners, return_index=True)
    sums = np.add.reduceat(vectors.astype(np.float64), starts, axis=0)
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return people.astype(np.int64), sums.astype(np.float32)


class Templates:
    """Every person's template in an index, caught up with the change log before each search.

    ``kind``: the store's configured index kind (``auto`` chooses by the number of people). Not
    thread-safe on its own: the store calls it under its lock, inside a read snapshot of the records.
    """

    def __init__(self, db: Database, *, kind: str, dim: int) -> None:
        self.db = db
        self.configured = kind
        self.dim = dim
        self.index: VectorIndex | None = None
        self.kind = ""
        self.cursor = -1
        self._slot: dict[int, int] = {}  # person id -> id of their template in the index
        self._owner: dict[int, int] = {}  # template id -> person id
        self._next = 1
        self.stats = TemplateStats()

    def __len__(self) -> int:
        return len(self._slot)

    # -- following the log ------------------------------------------------------------------
    def catch_up(self) -> None:
        """Bring the templates up to the snapshot's head (building them first when needed). Call
        inside ``db.snapshot()``."""
        head = self.db.head()
        if self.index is None or self.cursor > head or self.cursor < self.db.log_start():
            self._build(head)
            return
        if self.cursor < head:
            rows = self.db.changes(self.cursor, ops=(FACE_ADDED, FACE_REMOVED, PERSON_CHANGED))
            # A group joined or left (a detail on the row) changes no template.
            people = {int(row.person) for row in rows if row.person is not None and not (row.op == PERSON_CHANGED and row.detail)}
            if people:
                self._refresh(people)
            self.cursor = head
        if self._wants_rebuild():
            self._build(head)

    def _wants_rebuild(self) -> bool:
        assert self.index is not None
        if self.index.wants_rebuild is not None:
            return True
        if parse_kind(self.configured)[0] != AUTO:
            return False
        # As the faces' index does: down again only at half the size that made it grow.
        chosen = resolve_index_kind(AUTO, len(self), self.dim)
        return chosen != self.kind and resolve_index_kind(AUTO, len(self) * 2, self.dim) != self.kind

    def _build(self, head: int) -> None:
        owners, vectors = self.db.person_faces()
        people, templates = templates_of(owners, vectors)
        self.kind = resolve_index_kind(self.configured, len(people), self.dim)
        log.info("%s: building %d person templates (%s index)", self.db.location, len(people), self.kind)
        self.index = create_index(self.kind, self.dim)
        slots = np.arange(self._next, self._next + len(people), dtype=np.int64)
        self._next += len(people)
        self._slot = dict(zip(people.tolist(), slots.tolist()))
        self._owner = dict(zip(slots.tolist(), people.tolist()))
        self.index.add(slots, templates)
        self.cursor = head
        self.stats.builds += 1

    def _refresh(self, people: set[int]) -> None:
        old = [self._slot.pop(person) for person in people if person in self._slot]
        for slot in old:
            del self._owner[slot]
        assert self.index is not None
        if old:
            self.index.remove(np.array(old, dtype=np.int64))
        owners, vectors = self.db.person_faces(people)
        found, templates = templates_of(owners, vectors)
        slots = np.arange(self._next, self._next + len(found), dtype=np.int64)
        self._next += len(found)
        self._slot.update(zip(found.tolist(), slots.tolist()))
        self._owner.update(zip(slots.tolist(), found.tolist()))
        self.index.add(slots, templates)
        self.stats.refreshed += len(people)

    # -- search -----------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best people per query by template score: ``(scores, person ids)``, each
        ``(q, ≤k)``, best first, ``-1`` ids padding. ``among``: only these person ids (a group's
        members); up to :data:`EXACT_PEOPLE` of them are scored exactly. Scores are exact."""
        assert self.index is not None
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if among is not None:
            slots = np.array([self._slot[p] for p in among.tolist() if p in self._slot], dtype=np.int64)
            if not len(slots):
                return _empty(len(queries))
            if len(slots) <= EXACT_PEOPLE:
                return self._exact(queries, k, slots)
            restrict: Subset | None = Subset(slots)
        else:
            if not len(self._slot):
                return _empty(len(queries))
            restrict = None
        wanted = self.index.candidates(k) if isinstance(self.index, FaissIndex) else k
        if restrict is not None and isinstance(self.index, FaissIndex):
            widen = float(min(8.0, max(1.0, self.index.count / len(restrict))))
            scores, found = self.index.search(queries, wanted, restrict, widen=widen)
        else:
            scores, found = self.index.search(queries, wanted, restrict.ids if restrict is not None else None)
        if not self.index.exact_scores:
            return self._rescore(queries, found, k)
        return scores[:, :k], self._people(found[:, :k])

    def _exact(self, queries: np.ndarray, k: int, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.index is not None
        held = self.index.vectors(slots)
        people = np.array([self._owner[int(s)] for s in slots], dtype=np.int64)
        if held is None:  # compressed codes: computed from the records
            people, held = templates_of(*self.db.person_faces(people))
        scores = queries @ held.T
        order = np.argsort(-scores, axis=1, kind="stable")[:, : max(1, min(k, len(people)))]
        return np.take_along_axis(scores, order, 1), people[order]

    def _rescore(self, queries: np.ndarray, found: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact template scores for the candidates a compressed index found, best ``k`` first."""
        people = self._people(found)
        held_people, held = templates_of(*self.db.person_faces({int(p) for p in people.ravel() if p >= 0}))
        row_of = {int(p): r for r, p in enumerate(held_people)}
        scores = np.full(people.shape, -np.inf, np.float32)
        for q, row in enumerate(people):
            rows = np.array([row_of.get(int(p), -1) for p in row])
            valid = rows >= 0
            if valid.any():
                scores[q, valid] = held[rows[valid]] @ queries[q]
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(np.where(np.isfinite(scores), people, -1), order, 1)
        return np.take_along_axis(scores, order, 1), best

    def _people(self, slots: np.ndarray) -> np.ndarray:
        return np.vectorize(lambda s: self._owner.get(int(s), -1), otypes=[np.int64])(slots) if slots.size else slots


def _empty(queries: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((queries, 1), -np.inf, np.float32), np.full((queries, 1), -1, np.int64)
