"""The storage contract of a gallery: people, their faces' vectors, groups, settings, and search.

:class:`Store` is what :class:`~faceshot.gallery.Gallery` is written against; the embedded default
is :class:`~faceshot.gallery.local.LocalStore` (SQLite or PostgreSQL records + a FAISS index in
the process); :func:`~faceshot.gallery.location.open_store` opens one by path or URL. Every backend
passes the same contract suite (``tests/test_store_contract.py``).

**Records and vectors.** A store has two sides. The *records* (people, faces with their vectors,
groups, settings, API keys, clusters, the change log) are the source of truth, kept in
transactions: SQLite here, PostgreSQL for several hosts. *Vector indexes* (FAISS in this process,
a vector engine such as Milvus) are derived from the records and can always be rebuilt from them.

**The consistency contract** every backend keeps:

1. Every write appends to the change log in the same transaction as the records it changes, and
   is acknowledged (the method returns) only once committed and durable.
2. The log has no gaps and follows commit order: a reader that has seen change *n* has seen every
   change before it. (SQLite: writers are serialised by ``BEGIN IMMEDIATE``. On PostgreSQL a
   sequence alone does not give this, since numbers are taken before commit: writers serialise
   on an advisory lock and number the log from a counter row in their transaction,
   :mod:`faceshot.gallery.postgres`.)
3. Each consumer of the log (a process's index, a vector engine) keeps its own cursor; a durable
   consumer stores it in the records (``cursors``). A vector engine that cannot share the
   records' transaction consumes this log: it is the outbox, and there is no other.
4. Every search first applies the log entries newer than its cursor. Entries a vector engine has
   not confirmed yet are scored exactly, against their vectors in the records.
5. Results are filtered against the records of one committed state: a deleted face or person is
   never returned, by any backend, from the moment the delete is acknowledged.
6. An index is never rewritten whole on a write: it is saved as snapshots (by size or time), and a
   process never rebuilds it because another process wrote; it applies that process's entries.

Every write method raises :class:`~faceshot.errors.NotFound` for an unknown person, face or group,
:class:`~faceshot.errors.GalleryBusyError` when another writer held the lock past the timeout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from faceshot.gallery.database import Change
from faceshot.gallery.results import CheckReport, GroupSummary, ImportSummary, PersonDetails, PersonSummary
from faceshot.results import Box

__all__ = ["Store", "NewFace", "Added", "Hit", "PersonRecord", "Change"]


@dataclass(frozen=True, eq=False)
class NewFace:
    """A face to store: its unit vector and what is known about where it came from.

    ``sha256`` identifies the photo file: a person never gets two faces from the same file.
    ``created`` keeps the original time when importing; ``None`` means now.
    """

    embedding: np.ndarray
    sha256: str | None = None
    source: str | None = None
    box: Box | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    thumbnail: bytes | None = None
    created: str | None = None


@dataclass(frozen=True)
class Added:
    """The outcome of storing one :class:`NewFace`: its id, and ``new=False`` when it was already there."""

    face_id: int
    new: bool


@dataclass(frozen=True)
class Hit:
    """One neighbour found by a search: a face, whose person it is, and its score (cosine similarity)."""

    face_id: int
    person: str
    score: float


@dataclass(frozen=True, eq=False)
class PersonRecord:
    """A person with all their faces, as exported and imported."""

    name: str
    metadata: dict[str, Any]
    groups: tuple[str, ...]
    created: str | None
    faces: tuple[NewFace, ...]


class Store(ABC):
    """People, faces and groups, kept durably, with nearest-neighbour search over the face vectors.

    A store holds vectors of one embedder only (``embedder``, ``dim``).
    """

    embedder: str
    dim: int

    # -- settings ---------------------------------------------------------------------------
    @abstractmethod
    def get_setting(self, key: str) -> Any:
        """The stored value (JSON types) or ``None``."""

    @abstractmethod
    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value; ``None`` deletes the key."""

    # -- writes -----------------------------------------------------------------------------
    @abstractmethod
    def add_faces(
        self,
        name: str,
        faces: Sequence[NewFace],
        *,
        create: bool = False,
        metadata: dict[str, Any] | None = None,
        groups: Iterable[str] = (),
    ) -> list[Added]:
        """Add faces to a person in one transaction, creating the person when ``create``.

        ``metadata`` is merged into the person's; the person joins ``groups``. A face whose
        ``sha256`` that person already has is not added again (``Added.new`` is False).
        """

    @abstractmethod
    def remove_face(self, face_id: int) -> str:
        """Remove one face; returns the name of the person it belonged to."""

    @abstractmethod
    def delete_person(self, name: str) -> int:
        """Remove a person and every face of theirs; returns how many faces were removed."""

    @abstractmethod
    def rename_person(self, old: str, new: str) -> None:
        """Give a person another name (an error if ``new`` is taken)."""

    @abstractmethod
    def merge_people(self, source: str, target: str) -> int:
        """Move every face and group of ``source`` to ``target`` and delete ``source``; returns faces moved."""

    @abstractmethod
    def add_to_group(self, name: str, group: str) -> None:
        """Put a person in a group (created on first use)."""

    @abstractmethod
    def remove_from_group(self, name: str, group: str) -> bool:
        """Take a person out of a group; False when they were not in it. Empty groups disappear."""

    @abstractmethod
    def import_people(self, records: Iterable[PersonRecord]) -> ImportSummary:
        """Add people and faces in one transaction (faces already present are skipped)."""

    # -- reads ------------------------------------------------------------------------------
    @abstractmethod
    def has_person(self, name: str) -> bool:
        """Whether someone of that name is enrolled."""

    @abstractmethod
    def known_files(self, name: str, sha256s: Iterable[str]) -> dict[str, int]:
        """Which of these file hashes the person already has a face from: ``{sha256: face_id}``."""

    @abstractmethod
    def faces_of_files(self, sha256s: Iterable[str]) -> dict[str, list[tuple[str, int, Box | None]]]:
        """Who was enrolled from these photo files: ``{sha256: [(person, face id, box), ...]}``."""

    @abstractmethod
    def people(self) -> list[PersonSummary]:
        """Every person, by name."""

    @abstractmethod
    def person(self, name: str) -> PersonDetails:
        """One person with their faces (no embeddings)."""

    @abstractmethod
    def groups(self) -> list[GroupSummary]:
        """Every group with its members."""

    @abstractmethod
    def thumbnail(self, face_id: int) -> bytes | None:
        """The JPEG kept for a face, or ``None`` when none was kept."""

    @abstractmethod
    def embeddings(self, names: Iterable[str]) -> dict[str, np.ndarray]:
        """Every face vector of each named person, ``(n, dim)`` float32."""

    @abstractmethod
    def export_people(self, *, thumbnails: bool = False) -> Iterator[PersonRecord]:
        """Every person with every face, vectors included, thumbnails only when asked; one
        committed state, streamed (an export or a migration never holds the whole gallery)."""

    # -- the change log ---------------------------------------------------------------------
    @abstractmethod
    def head(self) -> int:
        """The number of the last change committed (0 for a new gallery)."""

    @abstractmethod
    def changes(self, after: int, limit: int | None = None) -> list[Change]:
        """The log entries after number ``after``, in commit order, with no gaps.

        Raises :class:`~faceshot.errors.GalleryError` when entries after ``after`` were pruned (the
        consumer must rebuild from the records).
        """

    # -- search -----------------------------------------------------------------------------
    @abstractmethod
    def scope(self, group: str | Sequence[str] | None = None) -> tuple[int, int, int]:
        """``(faces, most faces of one person, people)`` among everyone, or among the members of
        one group or several (their union)."""

    @abstractmethod
    def search(self, vectors: np.ndarray, k: int, *, group: str | Sequence[str] | None = None) -> list[list[Hit]]:
        """The ``k`` nearest faces to each query vector, best first.

        With ``group`` (one name, or several for their union), only faces of those groups' members
        are searched (restricted inside the search, so someone outside can never crowd them out).
        :class:`~faceshot.errors.NotFound` names a group that does not exist.
        """

    def search_people(
        self, vectors: np.ndarray, k: int, *, group: str | Sequence[str] | None = None
    ) -> list[list[tuple[str, float]]]:
        """The ``k`` best people for each query by ``mean`` aggregation: ``(name, score)`` best
        first, the score the query against the person's template (the unit-length mean of their
        face vectors, :func:`~faceshot.gallery.ranking.template`). ``group`` as in :meth:`search`.

        This default scores the people among the nearest faces against their templates (their
        vectors read per candidate); a store that keeps templates in an index of their own
        (:class:`~faceshot.gallery.local.LocalStore`) answers with one search over every person.
        """
        from faceshot.gallery.ranking import MAX_NEIGHBOURS, rank_mean

        queries = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        faces, most, _ = self.scope(group)
        if not faces:
            return [[] for _ in queries]
        hits = self.search(queries, min(faces, max(k, k * most), MAX_NEIGHBOURS), group=group)
        return [rank_mean(query, row, self.embeddings)[:k] for query, row in zip(queries, hits)]

    # -- upkeep -----------------------------------------------------------------------------
    @abstractmethod
    def check(self) -> CheckReport:
        """Compare the source of truth with any derived index, changing nothing."""

    @abstractmethod
    def rebuild(self) -> CheckReport:
        """Rebuild any derived index from the source of truth."""

    @abstractmethod
    def close(self) -> None:
        """Release files and connections; further calls fail."""
