"""Milvus as a gallery's vector engine: one more consumer of the records' change log.

    store = LocalStore("people.db", embedder=..., dim=128, vectors="milvus://127.0.0.1:19530?collection=people")

The records (SQLite, PostgreSQL) stay the source of truth; a Milvus collection holds a derived copy
of every face vector, one row per face: ``id`` (the face id), ``vector`` and ``groups``, an array
of the ids of the groups the face's person is in, so a group search is restricted inside Milvus
(``array_contains_any``) whatever number of groups a face belongs to. How it keeps the consistency
contract (:mod:`faceshot.gallery.store`):

- **Applying the log.** Before every search the entries after the engine's cursor are applied:
  ``face_added`` upserts the face, ``face_removed`` deletes it, ``person_changed`` upserts every
  face of that person (their groups may have changed; a merge moves faces). The cursor is stored
  in the records (``cursors``: ``milvus:<collection>``), advanced in the same records transaction
  that read the entries; that transaction holds the records' write lock, so appliers in several
  processes never apply out of order.
- **Confirming.** Milvus answers searches from what its query node has consumed, which may lag
  the writes it acknowledged. An applied cursor becomes *confirmed* (``milvus:<collection>:confirmed``)
  once a query at ``Strong`` consistency has run after the writes: done when
  ``confirm_rows`` entries or ``confirm_seconds`` are waiting, so searches do not wait on every write.
- **Searching.** Milvus is searched with ``Eventually`` consistency (never waiting); faces added or
  regrouped in entries after the confirmed cursor are scored exactly against the records'
  vectors and merged in, Milvus is asked for as many more neighbours as entries could hide, and
  the store filters every result against the records, so a delete takes effect at once.
- **Exact scores.** HNSW, IVF_FLAT and FLAT keep the float vectors (their inner products are the
  exact scores); IVF_SQ8 and IVF_PQ return ``RERANK`` × ``k`` candidates, rescored exactly from the records.

**Building a large collection.** A rebuild fills a new collection with plain inserts, then
flushes once, so Milvus seals every segment (about 130,000 faces of 128-D each with its default
512 MB segments) and indexes each one at once. Milvus then merges segments it counts as small
(auto-compaction) and indexes the merged ones again: on a server short of cores that second pass
can cost as much as the first (BENCHMARKS.md, "Milvus": 400,000 faces on 2 loaded cores, every
segment indexed after 340 s, then three merged into one of 265,000 faces and that indexed again,
until 592 s). A server given a bulk load of millions of faces
may run it with ``dataCoord.compaction.enableAutoCompaction: false`` in its ``milvus.yaml`` and
turn it back on afterwards — not for good: compaction is also what reclaims deleted rows.

The URL: ``milvus://[user:password@]host:port?collection=NAME`` with optional ``index`` (``hnsw``,
the default; ``ivf_flat``, ``ivf_sq8``, ``ivf_pq``, ``flat``), the index's parameters (``M``,
``efConstruction``, ``ef``; ``nlist``, ``nprobe``; ``m`` for PQ), ``confirm_rows`` (1000),
``confirm_seconds`` (1.0), ``exact_group`` (groups of at most this many faces are scored exactly
from the records: :data:`EXACT_GROUP`), ``secure=1`` for TLS, ``timeout`` (seconds, 30). Passwords are never
logged or put in error messages. Needs the ``milvus`` extra (pymilvus).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np

from faceshot.errors import ConfigError, GalleryError
from faceshot.gallery.database import FACE_ADDED, FACE_REMOVED, PERSON_CHANGED, Change, Database
from faceshot.gallery.vectors import LOG_KEEP, EngineState, VectorEngine

__all__ = ["MilvusVectors", "MilvusOptions", "open_engine", "parse_url", "INDEX_KINDS", "redact"]

log = logging.getLogger(__name__)

#: Index kinds: Milvus's index type, whether its scores are the exact inner products, its build
#: parameters and its search parameters (defaults; each may be given in the URL).
#: Search breadth as the local backend's (BENCHMARKS.md): on LFW-like galleries of 100k faces, HNSW
#: with ef 64 or IVF with 32 of 1,024 lists kept only 99.0% of exact search's decisions.
INDEX_KINDS: dict[str, tuple[str, bool, dict[str, int], dict[str, int]]] = {
    "hnsw": ("HNSW", True, {"M": 16, "efConstruction": 200}, {"ef": 256}),
    "ivf_flat": ("IVF_FLAT", True, {"nlist": 1024}, {"nprobe": 128}),
    "ivf_sq8": ("IVF_SQ8", False, {"nlist": 1024}, {"nprobe": 128}),
    "ivf_pq": ("IVF_PQ", False, {"nlist": 1024, "m": 32, "nbits": 8}, {"nprobe": 128}),
    "flat": ("FLAT", True, {}, {}),
}
#: Compressed indexes return this many times ``k`` candidates, rescored exactly.
RERANK = 4
#: The most neighbours one Milvus search returns (Milvus's topk limit).
MAX_LIMIT = 16384
#: Most groups one person may be in (Milvus's array capacity limit is 4096).
MAX_GROUPS = 4096
#: Rows per upsert call (128-D float32: about 2.6 MB per call, well inside gRPC's 64 MB).
BATCH = 5000
#: A group search inside Milvus widens ``ef``/``nprobe`` by how small a share of the collection the
#: group is, up to this factor: filtered HNSW on an ARRAY field kept 74% of the exact top-1 for a
#: group of 15% of 100k faces at ef 64 (BENCHMARKS.md, "Milvus").
MAX_WIDEN = 8.0
#: Milvus's largest ef.
MAX_EF = 32768
#: Log entries applied in one records transaction (the write lock is held while Milvus writes them).
APPLY_ENTRIES = 5000
#: An engine further behind than this many entries is rebuilt from the records instead.
REBUILD_ENTRIES = 200_000
#: Groups of at most this many faces are scored exactly from the records (cached by the store until
#: the log moves): cheaper than a filtered ANN search, and exact.
EXACT_GROUP = 10_000
_COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_OPTIONS = {"collection", "index", "confirm_rows", "confirm_seconds", "exact_group", "secure", "timeout"}


@dataclass(frozen=True)
class MilvusOptions:
    """A parsed ``milvus://`` URL (:func:`parse_url`)."""

    host: str
    port: int
    collection: str
    index: str = "hnsw"
    build: dict[str, int] = field(default_factory=dict)
    search: dict[str, int] = field(default_factory=dict)
    confirm_rows: int = 1000
    confirm_seconds: float = 1.0
    exact_group: int = EXACT_GROUP
    secure: bool = False
    timeout: float = 30.0
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}:{self.port}"

    @property
    def where(self) -> str:
        """The server and collection, for messages (no credentials)."""
        return f"Milvus at {self.host}:{self.port}, collection {self.collection!r}"


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs and messages)."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def parse_url(url: str) -> MilvusOptions:
    """Read a ``milvus://`` URL (see the module's text). Raises :class:`~faceshot.errors.ConfigError`
    for a missing or malformed collection name, an unknown index kind or option, or a bad number."""
    parts = urlsplit(url)
    shown = redact(url)
    if parts.scheme not in ("milvus", "milvus+https"):
        raise ConfigError(f"{shown}: a Milvus URL starts with milvus://")
    try:
        host, port = parts.hostname or "127.0.0.1", parts.port or 19530
    except ValueError:
        raise ConfigError(f"{shown}: the port must be a number") from None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    collection = query.pop("collection", "")
    if not _COLLECTION.fullmatch(collection):
        raise ConfigError(
            f"{shown}: name the collection, e.g. ?collection=people (letters, digits and _, not starting with a "
            f"digit); each gallery needs its own"
        )
    kind = query.pop("index", "hnsw").lower()
    if kind not in INDEX_KINDS:
        raise ConfigError(f"{shown}: unknown Milvus index {kind!r}; known: {', '.join(INDEX_KINDS)}")
    _, _, build, search = INDEX_KINDS[kind]
    build, search = dict(build), dict(search)
    numbers: dict[str, float] = {}
    for key, text in query.items():
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{shown}: {key}={text!r} is not a number") from None
        if key in build:
            build[key] = int(value)
        elif key in search:
            search[key] = int(value)
        elif key in _OPTIONS:
            numbers[key] = value
        else:
            known = sorted(_OPTIONS | set(build) | set(search))
            raise ConfigError(f"{shown}: unknown option {key!r} for a {kind} index; known: {', '.join(known)}")
    if min(numbers.get(key, 0) for key in ("confirm_rows", "confirm_seconds", "exact_group")) < 0:
        raise ConfigError(f"{shown}: confirm_rows, confirm_seconds and exact_group cannot be negative")
    return MilvusOptions(
        host=host,
        port=port,
        collection=collection,
        index=kind,
        build=build,
        search=search,
        confirm_rows=int(numbers.get("confirm_rows", 1000)),
        confirm_seconds=float(numbers.get("confirm_seconds", 1.0)),
        exact_group=int(numbers.get("exact_group", EXACT_GROUP)),
        secure=parts.scheme == "milvus+https" or bool(numbers.get("secure", 0)),
        timeout=float(numbers.get("timeout", 30.0)),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def open_engine(url: str, records: Database, *, embedder: str, dim: int) -> "MilvusVectors":
    """The engine for ``url`` over ``records`` (what :func:`faceshot.gallery.location.open_vectors` calls).
    Connects at the first search."""
    return MilvusVectors(records, parse_url(url), embedder=embedder, dim=dim)


class MilvusVectors(VectorEngine):
    """A Milvus collection that follows a gallery's change log (see the module's text).

    Used by the store under its lock; not thread-safe on its own.
    """

    name = "milvus"
    exact_group = EXACT_GROUP

    def __init__(self, records: Database, options: MilvusOptions, *, embedder: str, dim: int) -> None:
        self.db = records
        self.options = options
        self.embedder = embedder
        self.dim = dim
        self.collection = options.collection
        self.exact_group = options.exact_group
        self.consumer = f"milvus:{options.collection}"
        self.confirmer = f"milvus:{options.collection}:confirmed"
        kind, self.exact_scores, _, _ = INDEX_KINDS[options.index]
        self.index_type = kind
        self._client: Any = None
        self._applied = -1  # the cursor in the records, as last read or written here
        self._confirmed = -1
        self._waiting_since: float | None = None  # when this process first saw applied > confirmed
        self._rows = -1  # about how many rows the collection holds (-1: not counted yet)
        self.rebuilds = 0

    def __repr__(self) -> str:
        return f"MilvusVectors({self.options.where}, index={self.options.index!r})"

    # -- the connection --------------------------------------------------------------------------
    def _milvus(self) -> Any:
        if self._client is None:
            try:
                from pymilvus import MilvusClient
            except ImportError as exc:
                raise ImportError("the Milvus vector engine needs pymilvus: pip install 'faceshot[milvus]'") from exc
            token = f"{self.options.user}:{self.options.password or ''}" if self.options.user else ""
            with self._errors("connecting"):
                self._client = MilvusClient(uri=self.options.uri, token=token, timeout=self.options.timeout)
            self._check_collection()
        return self._client

    def _errors(self, doing: str, lost: bool = False) -> "_MilvusErrors":
        return _MilvusErrors(self.options.where, doing, lost)

    def _description(self) -> str:
        return f"faceshot gallery vectors: embedder {self.embedder}, {self.dim}-D"

    def _check_collection(self) -> None:
        """A collection of that name made for other vectors is refused, never dropped."""
        with self._errors("describing the collection"):
            if not self._client.has_collection(self.collection):
                return
            described = self._client.describe_collection(self.collection)
        if described.get("description") != self._description():
            raise ConfigError(
                f"{self.options.where} exists but does not hold this gallery's vectors "
                f"({described.get('description')!r}); choose another collection"
            )

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        kind, _, build, _ = INDEX_KINDS[self.options.index]
        client = self._milvus()
        schema = MilvusClient.create_schema(auto_id=False, description=self._description())
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("groups", DataType.ARRAY, element_type=DataType.INT64, max_capacity=MAX_GROUPS)
        index = client.prepare_index_params()
        params = {**build, **{key: value for key, value in self.options.build.items() if key in build}}
        index.add_index(field_name="vector", index_type=kind, metric_type="IP", params=params)
        with self._errors("creating the collection"):
            if client.has_collection(self.collection):
                client.drop_collection(self.collection)
            client.create_collection(
                self.collection, schema=schema, index_params=index, consistency_level="Bounded"
            )

    # -- following the log -----------------------------------------------------------------------
    def catch_up(self) -> None:
        """Apply the entries after the engine's cursor; confirm them when due (see the module's text)."""
        client = self._milvus()
        head = self.db.head()
        while not (self._applied == self._confirmed == head):
            rebuild = more = False
            # The records' write lock: one applier at a time, in log order. At most APPLY_ENTRIES
            # per transaction, so writers never wait long for it.
            with self.db.transaction():
                head = self.db.head()
                applied = self.db.cursor(self.consumer)
                with self._errors("looking for the collection"):
                    exists = client.has_collection(self.collection)
                if applied is None or not exists or applied > head or applied < self.db.log_start():
                    rebuild = True
                elif head - applied > REBUILD_ENTRIES:
                    rebuild = True  # faster, and outside the lock
                elif applied < head:
                    rows = self.db.changes(applied, limit=APPLY_ENTRIES)
                    self._apply(rows)
                    applied = rows[-1].seq
                    self.db.set_cursor(self.consumer, applied)
                    self.db.prune(LOG_KEEP)
                    more = applied < head
                if rebuild:
                    self._applied = self._confirmed = -1  # until rebuilt: a failed rebuild is tried again
                else:
                    self._applied = applied
                    self._confirmed = min(self.db.cursor(self.confirmer) or 0, applied)
            if rebuild:
                self.rebuild()
            if not more:
                break
        self._maybe_confirm()

    def _apply(self, rows: list[Change]) -> None:
        removed = {int(row.face) for row in rows if row.op == FACE_REMOVED and row.face is not None}
        added = {int(row.face) for row in rows if row.op == FACE_ADDED and row.face is not None}
        people = {int(row.person) for row in rows if row.op == PERSON_CHANGED and row.person is not None}
        groups = self.db.face_groups(added, people)  # faces that still exist, with their groups now
        gone = sorted(removed - set(groups))
        if self._rows >= 0:
            self._rows = max(0, self._rows + len(added & set(groups)) - len(gone))
        client = self._milvus()
        with self._errors("deleting faces"):
            for start in range(0, len(gone), BATCH):
                client.delete(self.collection, ids=gone[start : start + BATCH])
        self._upsert(groups)
        log.debug("%s: applied %d entries (%d faces written, %d deleted)", self.options.where, len(rows), len(groups), len(gone))

    def _upsert(
        self, groups: dict[int, tuple[int, ...]], vectors: tuple[np.ndarray, np.ndarray] | None = None, *, fresh: bool = False
    ) -> None:
        """Write these faces (vectors read from the records unless given), replacing any row of the
        same id; ``fresh``: into a new, empty collection (plain inserts: an upsert also writes a
        delete per row, which Milvus must compact away later)."""
        wanted = sorted(groups)
        client = self._milvus()
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            if vectors is None:
                ids, held = self.db.vectors_of_faces(chunk)
            else:
                ids, held = vectors[0][start : start + BATCH], vectors[1][start : start + BATCH]
            rows = [
                {"id": int(face), "vector": vector, "groups": list(groups[int(face)])}
                for face, vector in zip(ids, held)
            ]
            if any(len(row["groups"]) > MAX_GROUPS for row in rows):
                raise GalleryError(f"{self.options.where}: a person is in more than {MAX_GROUPS} groups")
            with self._errors("writing faces"):
                (client.insert if fresh else client.upsert)(self.collection, rows)

    def _maybe_confirm(self) -> None:
        if self._confirmed >= self._applied:
            self._waiting_since = None
            return
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        waiting = self._applied - self._confirmed
        if not (
            self.options.confirm_rows == 0
            or waiting >= self.options.confirm_rows
            or now - self._waiting_since >= self.options.confirm_seconds
        ):
            return
        target = self._applied
        # A Strong query waits until the query node has consumed every write made before it.
        with self._errors("confirming writes"):
            self._milvus().query(self.collection, filter="id < 0", limit=1, consistency_level="Strong")
        with self.db.transaction():
            confirmed = self.db.cursor(self.confirmer) or 0
            if target > confirmed:
                self.db.set_cursor(self.confirmer, target)
        self._confirmed, self._waiting_since = max(confirmed, target), None

    def rebuild(self) -> None:
        """Drop and refill the collection from one snapshot of the records, then confirm it."""
        log.info("%s: building the collection from the records", self.options.where)
        with self.db.snapshot():
            head = self.db.head()
            groups = self.db.face_groups(None)
            ids, vectors = self.db.all_vectors()
        self._create()
        self._upsert(groups, (ids, vectors), fresh=True)
        with self._errors("confirming the rebuilt collection"):
            # Sealed now, so Milvus indexes every segment at once: rows left in a growing segment are
            # searched through Milvus's interim index (nprobe 16 of 128 lists: lower recall) until it
            # seals on its own, after 10 idle minutes (BENCHMARKS.md, "Milvus").
            self._milvus().flush(self.collection)
            self._milvus().query(self.collection, filter="id < 0", limit=1, consistency_level="Strong")
        with self.db.transaction():
            self.db.set_cursor(self.consumer, head)
            self.db.set_cursor(self.confirmer, head)
        self._applied = self._confirmed = head
        self._rows = len(ids)
        self.rebuilds += 1
        # Entries written while it was built are applied by the caller's next catch_up.

    def wait_indexed(self, timeout: float = 600.0) -> None:
        """Seal the collection's segments and wait until Milvus has indexed every row and its query
        node serves them from indexed sealed segments (benchmarks: until then, rows still in growing
        segments are searched through Milvus's interim index, with another recall)."""
        client = self._milvus()
        with self._errors("flushing"):
            client.flush(self.collection)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._errors("describing the index"):
                info = client.describe_index(self.collection, "vector")
                total = int(info.get("total_rows", 0))
                built = int(info.get("pending_index_rows", 0)) == 0 and int(info.get("indexed_rows", 0)) >= total
                loaded = client.list_loaded_segments(self.collection) if built else []
            if built and all(segment.index_id for segment in loaded) and sum(s.num_rows for s in loaded) >= total:
                return
            time.sleep(0.5)
        raise GalleryError(f"{self.options.where}: the index was not built within {timeout:.0f} s")

    # -- searching -------------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, *, groups: list[int] | None = None, subset: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`VectorEngine.search`. Call inside the records' read snapshot, after :meth:`catch_up`."""
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        head = self.db.head()
        pending_rows = self.db.changes(self._confirmed) if self._confirmed < head else []
        removed = sum(1 for row in pending_rows if row.op == FACE_REMOVED)
        added = {int(row.face) for row in pending_rows if row.op == FACE_ADDED and row.face is not None}
        people = {int(row.person) for row in pending_rows if row.op == PERSON_CHANGED and row.person is not None}
        # Faces Milvus may not show yet, or may show with their old groups: scored exactly here.
        pending = np.array(sorted(self.db.face_groups(added, people) if (added or people) else ()), dtype=np.int64)
        if subset is not None:
            pending = pending[np.isin(pending, subset)]
        wanted = k * (1 if self.exact_scores else RERANK)
        limit = min(MAX_LIMIT, wanted + removed + len(pending))
        try:
            widen = 1.0
            if subset is not None:  # a filtered graph or list search loses neighbours: search wider
                widen = float(min(MAX_WIDEN, max(1.0, self._rows_hint() / max(1, len(subset)))))
            scores, ids = self._ann(queries, limit, groups, widen)
        except _CollectionLost:
            # Dropped behind our back: this search is exact over the records; the next one rebuilds.
            log.warning("%s: the collection is gone; rebuilt at the next search", self.options.where)
            self._applied = self._confirmed = -1
            ids, held = self.db.all_vectors()
            if subset is not None:
                keep = np.isin(ids, subset)
                ids, held = ids[keep], held[keep]
            return _best(queries @ held.T, np.broadcast_to(ids, (len(queries), len(ids))), k)
        if len(pending):
            scores = np.where(np.isin(ids, pending), -np.inf, scores)
        if subset is not None:  # groups as the records say, not as Milvus last heard
            scores = np.where(np.isin(ids, subset), scores, -np.inf)
        if not self.exact_scores:
            scores = self._rescore(queries, ids, scores)
        if len(pending):
            found, held = self.db.vectors_of_faces(pending)
            if len(found):
                scores = np.concatenate([scores, queries @ held.T], axis=1)
                ids = np.concatenate([ids, np.broadcast_to(found, (len(queries), len(found)))], axis=1)
        return _best(scores, ids, k)

    def _rows_hint(self) -> int:
        """About how many rows the collection holds (kept from the last count; counted once if unknown)."""
        if self._rows < 0:
            self._rows = self.count()
        return self._rows

    def _ann(
        self, queries: np.ndarray, limit: int, groups: list[int] | None, widen: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        _, _, build, search = INDEX_KINDS[self.options.index]
        params = {**search, **self.options.search}
        if "ef" in params:
            params["ef"] = min(MAX_EF, max(int(params["ef"] * widen), limit))
        if "nprobe" in params:
            lists = int(self.options.build.get("nlist", build.get("nlist", 1024)))
            params["nprobe"] = min(lists, int(params["nprobe"] * widen))
        expression = "" if groups is None else f"array_contains_any(groups, {sorted(set(groups))})"
        with self._errors("searching", lost=True):
            answer = self._milvus().search(
                self.collection,
                data=[query.tolist() for query in queries],
                limit=max(1, limit),
                filter=expression,
                search_params={"metric_type": "IP", "params": params},
                consistency_level="Eventually",
            )
        scores = np.full((len(queries), max(1, limit)), -np.inf, np.float32)
        ids = np.full((len(queries), max(1, limit)), -1, np.int64)
        for row, hits in enumerate(answer):
            for column, hit in enumerate(hits):
                ids[row, column] = int(hit["id"])
                scores[row, column] = float(hit["distance"])
        return scores, ids

    def _rescore(self, queries: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Exact scores for a compressed index's candidates (those still kept: finite scores)."""
        found, held = self.db.vectors_of_faces(int(i) for i in ids[np.isfinite(scores)].ravel())
        exact = np.full(scores.shape, -np.inf, np.float32)
        if not len(found):
            return exact
        rows = np.searchsorted(found, ids)
        rows = np.clip(rows, 0, len(found) - 1)
        known = (found[rows] == ids) & np.isfinite(scores)
        exact[known] = np.einsum("qd,qkd->qk", queries, held[rows])[known]
        return exact

    # -- upkeep ----------------------------------------------------------------------------------
    def count(self) -> int:
        """The rows the collection holds, at Strong consistency."""
        with self._errors("counting rows"):
            answer = self._milvus().query(self.collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(answer[0]["count(*)"])

    def check(self) -> EngineState:
        client = self._milvus()
        with self.db.snapshot():
            head = self.db.head()
            applied = self.db.cursor(self.consumer)
            _, faces = self.db.counts()
        with self._errors("looking for the collection"):
            exists = client.has_collection(self.collection)
        if applied is None or not exists:
            return EngineState(0, applied, f"{self.options.where}: missing (built at the next search)")
        indexed = self.count()
        if applied > head:
            return EngineState(indexed, applied, "ahead of the records", (f"{self.options.where} is ahead of the records (change {applied} > {head})",))
        if applied < head:
            return EngineState(indexed, applied, f"{self.options.where}: ok, {head - applied} change(s) behind (applied at the next search)")
        if indexed != faces:
            return EngineState(indexed, applied, "holds other faces", (f"{self.options.where} holds {indexed} faces, the records {faces}",))
        return EngineState(indexed, applied, f"{self.options.where}: ok")

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None


class _CollectionLost(Exception):
    """The collection does not exist (any more)."""


class _MilvusErrors:
    """``with _MilvusErrors(where, doing):`` — pymilvus's and gRPC's errors as :class:`GalleryError`
    (``lost=True``: a missing collection as :class:`_CollectionLost`)."""

    def __init__(self, where: str, doing: str, lost: bool = False) -> None:
        self.where, self.doing, self.lost = where, doing, lost

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, trace: Any) -> bool:
        if error is None or isinstance(error, (GalleryError, ConfigError, ImportError)):
            return False
        module = type(error).__module__ or ""
        if module.startswith(("pymilvus", "grpc")) or isinstance(error, (ConnectionError, TimeoutError)):
            message = getattr(error, "message", None) or str(error)
            if self.lost and "collection not found" in message.lower():
                raise _CollectionLost(message) from None
            raise GalleryError(f"{self.where}: {self.doing} failed ({message})") from None
        return False


def _best(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` columns of each row, best first (``-1`` ids and ``-inf`` scores pad)."""
    k = max(1, k)
    if scores.shape[1] < k:
        pad = k - scores.shape[1]
        scores = np.concatenate([scores, np.full((len(scores), pad), -np.inf, np.float32)], axis=1)
        ids = np.concatenate([ids, np.full((len(ids), pad), -1, np.int64)], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    best_scores = np.take_along_axis(scores, order, 1).astype(np.float32)
    best_ids = np.where(np.isfinite(best_scores), np.take_along_axis(ids, order, 1), -1)
    return best_scores, best_ids
