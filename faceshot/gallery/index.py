"""The vector index: derived from the database, saved beside it, rebuilt whenever in doubt.

:class:`VectorIndex` is the seam for index types. ``flat`` (:class:`FlatIndex`) is exact
inner-product search over face ids, which on unit vectors is the cosine similarity faceshot
reports. Every other kind is a FAISS factory string (:class:`FaissIndex`): named ones (``hnsw``,
``ivfpq``, ``ivfsq``, :data:`NAMED`) or the user's own (``"HNSW32,Flat"``, ``"IVF4096,PQ32"``),
with search parameters after a colon (``"ivfpq:nprobe=512,rerank=256"``, :func:`parse_kind`).
``auto`` chooses by gallery size (:func:`resolve_index_kind`). Kinds that keep compressed codes
return candidates whose exact scores the store computes from the records, so every decision is
taken on exact scores; what an index can change is only *which* faces are candidates.

**Index file** (``<db>.faiss``), one file so that one ``os.replace`` swaps it whole::

    faceshot-index 1\\n
    {"kind": "flat", "embedder": "dlib-resnet", "dim": 128, "count": 42, "generation": 17,
     "sha256": "<hex digest of the payload>"}\\n
    <payload: the index as faiss.serialize_index writes it; for FaissIndex an .npz of the trained
     index, its untrained buffer, its tombstones and the factory string it was built with>

``generation`` is the database's change counter when the index was made; a file whose generation,
count, embedder or checksum disagree with the database is not used (see :func:`read_index_file`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import secrets
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from faceshot.errors import ConfigError, ModelError
from faceshot.registry import Registry

__all__ = [
    "VectorIndex",
    "FlatIndex",
    "FaissIndex",
    "Subset",
    "GroupVectors",
    "parse_kind",
    "SEARCH_PARAMS",
    "EF_CONSTRUCTION",
    "indexes",
    "create_index",
    "resolve_index_kind",
    "IndexHeader",
    "IndexFileError",
    "read_index_file",
    "write_index_file",
]

log = logging.getLogger(__name__)

MAGIC = b"faceshot-index 1\n"


def _faiss() -> Any:
    # Imported on first use: faiss takes a noticeable fraction of a second to import, and a CLI
    # command that never touches a gallery should not pay for it.
    try:
        import faiss
    except ImportError as exc:
        raise ModelError(f"faiss is not installed ({exc}); install it with: pip install faiss-cpu") from None
    return faiss


class VectorIndex(ABC):
    """Vectors under integer ids, searched by inner product (cosine similarity for unit vectors)."""

    kind: str
    dim: int

    @property
    @abstractmethod
    def count(self) -> int:
        """How many vectors the index holds."""

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``(n, dim)`` vectors under ``n`` new ids."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Remove the vectors with these ids; returns how many were there."""

    @abstractmethod
    def search(self, vectors: np.ndarray, k: int, subset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each ``(n, k)``, best first; missing neighbours have id -1.

        ``subset``: search only among these ids (the restriction is applied inside the search).
        """

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every id held, as int64."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The index serialised, for :func:`write_index_file`."""

    #: Whether :meth:`search` returns exact scores. An index of compressed codes does not: the
    #: store rescores its candidates against the records' vectors before anything is decided.
    exact_scores: bool = True

    def vectors(self, ids: np.ndarray) -> np.ndarray | None:
        """The exact ``(n, dim)`` vectors held under ``ids`` (all present), or ``None`` when the
        index keeps only compressed codes (the store then reads them from the records)."""
        return None

    def set_params(self, params: dict[str, float]) -> None:
        """Apply search parameters (``efSearch``, ``nprobe``, ``rerank``); an index without them refuses any."""
        if params:
            raise ConfigError(f"index {self.kind!r} takes no search parameters, got {', '.join(params)}")

    @property
    def wants_rebuild(self) -> str | None:
        """Why the index should be built again from the records (trained on more vectors, or
        compacted after many removals), or ``None``. The follower rebuilds it in the background."""
        return None


class Subset:
    """Face ids to restrict a search to, with the FAISS selector built once (building one over
    100,000 ids takes milliseconds; a store keeps a group's ``Subset`` until the log moves)."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self._selector: Any = None

    def __len__(self) -> int:
        return len(self.ids)

    def selector(self) -> Any:
        if self._selector is None:
            self._selector = _faiss().IDSelectorBatch(self.ids)
        return self._selector


def _selector(subset: "np.ndarray | Subset") -> Any:
    return subset.selector() if isinstance(subset, Subset) else _faiss().IDSelectorBatch(np.asarray(subset, dtype=np.int64))


class FlatIndex(VectorIndex):
    """Exact search: ``IndexIDMap2(IndexFlatIP(dim))`` with face ids as FAISS ids.

    Fast enough up to a few hundred thousand faces on one core (a search is one matrix product).
    """

    kind = "flat"

    def __init__(self, dim: int, data: bytes | None = None) -> None:
        faiss = _faiss()
        self.dim = dim
        if data is None:
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        else:
            self._index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
            if self._index.d != dim:
                raise ValueError(f"index holds {self._index.d}-D vectors, {dim} expected")

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(_vectors(vectors, self.dim), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        faiss = _faiss()
        return int(self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))))

    def search(self, vectors: np.ndarray, k: int, subset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = _vectors(vectors, self.dim)
        k = max(1, min(k, self.count))
        if self.count == 0:
            return np.full((len(queries), 1), -np.inf, np.float32), np.full((len(queries), 1), -1, np.int64)
        with _threads_for(len(queries)):
            if subset is None:
                return self._index.search(queries, k)
            faiss = _faiss()
            # The selector must outlive the search: keep a reference in this frame.
            selector = _selector(subset)
            return self._index.search(queries, k, params=faiss.SearchParameters(sel=selector))

    def ids(self) -> np.ndarray:
        return _faiss().vector_to_array(self._index.id_map).astype(np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray | None:
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        return self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def to_bytes(self) -> bytes:
        return _faiss().serialize_index(self._index).tobytes()


#: Below this many queries a search runs on one OpenMP thread: one probe's scan is memory-bound,
#: and FAISS's threads waiting on a busy core made a 10k-face search 48 ms instead of 0.7 ms here
#: (two cores, other processes running). Batches keep every thread.
ONE_THREAD_BELOW = 32


@contextmanager
def _threads_for(queries: int) -> Iterator[None]:
    if queries >= ONE_THREAD_BELOW:
        yield
        return
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


#: A group of more than this many faces, searched over its own vectors, is scanned first in 8-bit
#: codes (FAISS's scalar quantizer, one range for every dimension: a byte a dimension) and the
#: ``k`` + :data:`GROUP_RERANK` best are rescored exactly, so the scores are exact search's.
#: Over 100,000 synthetic LFW-like faces (2,000 probes; a scratch script, not committed) the exact
#: best 5 were among the codes' best 16 for every probe; the scan took about 0.5 ms on one thread
#: where the float product took 2-3 ms (both on a busy machine). Through the product at 1 M
#: faces: BENCHMARKS.md, "Second generator, 1 M faces, through the product".
CODED_SCAN_ABOVE = 20_000
GROUP_RERANK = 64


class GroupVectors:
    """A group's faces held in memory: ids ``(n,)`` int64 sorted, vectors ``(n, dim)`` float32 unit length.

    :meth:`search` gives exact search's answer over them: a FAISS flat scan, or with ``coded``
    (default: above :data:`CODED_SCAN_ABOVE` faces) an 8-bit scan whose best ``k`` +
    :data:`GROUP_RERANK` are rescored against the vectors. The codes take a quarter of the
    vectors' memory more and are built here, so only vectors kept for later searches are worth
    coding. A search of fewer than :data:`ONE_THREAD_BELOW` probes runs on one thread (a product
    through numpy's BLAS over 10,000 faces took 8 ms instead of 0.2 while other processes kept
    the cores busy).
    """

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, coded: bool | None = None) -> None:
        faiss = _faiss()
        self.ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._exact: np.ndarray | None = None
        if len(self.ids) > CODED_SCAN_ABOVE if coded is None else coded:
            self._exact = vectors
            self._index = faiss.IndexScalarQuantizer(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit_uniform,
                                                     faiss.METRIC_INNER_PRODUCT)
            self._index.train(vectors)
        else:
            self._index = faiss.IndexFlatIP(vectors.shape[1])
        self._index.add(vectors)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def coded(self) -> bool:
        """Whether a search scans 8-bit codes first."""
        return self._exact is not None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` faces per query ``(q, dim)``: exact scores ``(q, k')`` float32 (cosine) and
        ids ``(q, k')``, best first, ``k'`` = ``min(k, len(self))``; id -1 and score -inf where FAISS
        found nothing (a probe that is not a number)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, len(self.ids)))
        fetch = k if self._exact is None else min(len(self.ids), k + GROUP_RERANK)
        with _threads_for(len(queries)):
            scores, rows = self._index.search(queries, fetch)
        if self._exact is not None:
            scores = np.einsum("qd,qrd->qr", queries, self._exact[rows])
            scores[rows < 0] = -np.inf
            best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            scores, rows = np.take_along_axis(scores, best, 1), np.take_along_axis(rows, best, 1)
        scores[rows < 0] = -np.inf
        return scores, np.where(rows < 0, -1, self.ids[rows])


def _vectors(vectors: np.ndarray, dim: int) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))
    return array


#: Search parameters a kind may carry after a colon (``"hnsw:efSearch=128"``), and their defaults.
#: ``nprobe`` 0 means a share of the inverted lists (:func:`_default_nprobe`). The defaults are wide because face vectors
#: are hard for approximate search: on LFW-like synthetic galleries of 100k faces, HNSW32 at
#: efSearch 64 kept only 86% of the mated probes exact search names, IVF at nprobe 32 of 1,024
#: lists 92%; efSearch 256 kept 97%, a quarter of the lists with 128 rescored candidates ≥ 99%
#: (BENCHMARKS.md, benchmarks/ann_bench.py). At 1 M faces through the product (second generator,
#: 2,000 probes) efSearch 256 took 1.24 ms p50 and 4 decisions differed from exact search's,
#: efSearch 448 1.46 ms and 2 (99.9%, the issue's bar), hence 448.
SEARCH_PARAMS = {"efSearch": 448, "nprobe": 0, "rerank": 128}
#: Search parameters a named kind sets apart from :data:`SEARCH_PARAMS`. ``ivfpq``'s codes, two bits
#: per dimension, rank a true neighbour further down than ``ivfsq``'s four: at 1 M faces (bare
#: index, second generator, 512 of 4,096 lists) 256 candidates kept 99.0% of the names exact
#: search gets right and agreed on 99.7% of 2,000 decisions, 512 on 99.5% / 99.85%, 1,024 on
#: 100% / 99.95% (BENCHMARKS.md, "A compressed kind at ≤ 64 bytes per face").
KIND_PARAMS: dict[str, dict[str, float]] = {"ivfpq": {"rerank": 1024}}
#: Candidates an HNSW graph weighs for each new face's links while it is built (FAISS's default is
#: 40; a saved graph keeps the value it was built with). A graph built wider leads a search to
#: the nearest face more often: at 1 M faces (bare index, second generator, 4,000 probes), 40 →
#: 128 took the share of exact nearest neighbours found at efSearch 448 from 99.55% to 99.92%,
#: and of decisions equal to exact search's from 99.82% to 99.95%, for a build 2.6 times as
#: long (BENCHMARKS.md, "A graph built wider").
EF_CONSTRUCTION = 128


def parse_kind(kind: str) -> tuple[str, dict[str, float]]:
    """``"hnsw:efSearch=128"`` → ``("hnsw", {"efSearch": 128})``: the structure and its search parameters.

    Raises :class:`~faceshot.errors.ConfigError` for a parameter that does not exist or is not a positive number.
    """
    structure, _, tail = kind.partition(":")
    params: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in tail.split(","))):
        key, _, value = item.partition("=")
        if key not in SEARCH_PARAMS:
            raise ConfigError(f"unknown search parameter {key!r} in {kind!r}; choose from: {', '.join(SEARCH_PARAMS)}")
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            raise ConfigError(f"search parameter {key} in {kind!r} must be a whole number of at least 1, got {value!r}")
        params[key] = number
    return structure.strip(), params


class FaissIndex(VectorIndex):
    """Any FAISS factory string under face ids: ``"HNSW32,Flat"``, ``"IVF4096,PQ64x4fs"``, ...

    Built with ``faiss.index_factory(dim, spec, METRIC_INNER_PRODUCT)``; IVF kinds take face ids
    natively, others inside an ``IndexIDMap2``.
    Kinds whose storage cannot remove vectors (HNSW) keep *tombstones*: removed ids are excluded
    inside every search by a selector, and :attr:`wants_rebuild` asks for a compaction once they
    are a fifth of the index. Kinds that need training (IVF) hold their first vectors in an exact
    flat buffer, searched alongside, until :data:`TRAIN_PER_LIST` vectors per inverted list are
    there; ``nlist`` (for ``"ivf…"`` kinds without a number, ``IVF{nlist}``) is chosen from the
    count at training time, about ``4·√n``, and :attr:`wants_rebuild` asks for retraining once the
    index holds four times what it was trained on.

    ``exact_scores`` is False when the storage is compressed (PQ, SQ): the store rescores the
    ``rerank`` best candidates against the records' vectors, so decisions use exact scores.
    """

    def __init__(self, dim: int, data: bytes | None = None, *, kind: str, spec: str) -> None:
        faiss = _faiss()
        self.dim = dim
        self.kind = kind
        self.spec = spec  # may hold "{nlist}", filled in when trained
        self.params: dict[str, float] = {}
        self._tombstones: set[int] = set()
        self._tomb_array: np.ndarray | None = None
        self.trained_on = 0
        self._index: Any = None
        self._pending = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if data is not None:
            self._load(data)
            return
        self._check_spec()
        if "{nlist}" not in spec:
            probe = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
            if probe.is_trained:
                graph = getattr(_faiss().downcast_index(probe), "hnsw", None)
                if graph is not None:
                    graph.efConstruction = EF_CONSTRUCTION
                self._index = _with_ids(probe)

    def _check_spec(self) -> None:
        faiss = _faiss()
        try:
            faiss.index_factory(self.dim, self.spec.replace("{nlist}", "64"), faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ConfigError(f"FAISS cannot build index {self.spec!r} for {self.dim}-D vectors: {_first_line(exc)}") from None

    # -- what it holds ----------------------------------------------------------------------
    @property
    def count(self) -> int:
        main = 0 if self._index is None else int(self._index.ntotal)
        return main + int(self._pending.ntotal) - len(self._tombstones)

    @property
    def exact_scores(self) -> bool:  # type: ignore[override]
        return self._index is None or _holds_vectors(self.spec)

    def ids(self) -> np.ndarray:
        faiss = _faiss()
        parts = [faiss.vector_to_array(self._pending.id_map)]
        if self._index is not None:
            parts.append(_main_ids(self._index))
        held = np.concatenate(parts).astype(np.int64)
        if self._tombstones:
            held = held[~np.isin(held, self._tomb())]
        return held

    def vectors(self, ids: np.ndarray) -> np.ndarray | None:
        ids = np.asarray(ids, dtype=np.int64)
        if self._index is not None and self._index.ntotal and (not _holds_vectors(self.spec) or _is_ivf(self._index)):
            return None  # codes only, or IVF lists without a direct map: the records have them
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        out = np.empty((len(ids), self.dim), np.float32)
        faiss = _faiss()
        in_pending = np.isin(ids, faiss.vector_to_array(self._pending.id_map)) if self._pending.ntotal else np.zeros(len(ids), bool)
        if in_pending.any():
            out[in_pending] = self._pending.reconstruct_batch(ids[in_pending])
        if (~in_pending).any():
            out[~in_pending] = self._index.reconstruct_batch(ids[~in_pending])
        return out

    # -- changes ----------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = _vectors(vectors, self.dim)
        if not len(ids):
            return
        if self._tombstones:
            # A face removed and added back (a log replayed over a snapshot): its vector is still
            # stored, so it only comes back to life. Face vectors never change.
            revived = np.isin(ids, self._tomb())
            for face in ids[revived]:
                self._tombstones.discard(int(face))
            self._tomb_array = None
            ids, vectors = ids[~revived], vectors[~revived]
        if self._index is not None:
            self._index.add_with_ids(vectors, ids)
            return
        self._pending.add_with_ids(vectors, ids)
        if self._pending.ntotal >= self._training_size(int(self._pending.ntotal)):
            self._train()

    def _training_size(self, n: int) -> int:
        return TRAIN_PER_LIST * _nlist_for(n) if "{nlist}" in self.spec else TRAIN_PER_LIST * _lists_in(self.spec)

    def _train(self) -> None:
        faiss = _faiss()
        n = int(self._pending.ntotal)
        spec = self.spec.replace("{nlist}", str(_nlist_for(n)))
        index = faiss.index_factory(self.dim, spec, faiss.METRIC_INNER_PRODUCT)
        ids = faiss.vector_to_array(self._pending.id_map).astype(np.int64)
        vectors = self._pending.reconstruct_batch(ids)
        sample = vectors
        limit = TRAIN_SAMPLE_PER_LIST * _lists_in(spec)
        if len(vectors) > limit:
            sample = vectors[np.random.default_rng(0).choice(len(vectors), limit, replace=False)]
        log.info("training a %s index on %d of %d vectors", spec, len(sample), n)
        index.train(sample)
        wrapped = _with_ids(index)
        wrapped.add_with_ids(vectors, ids)
        self._index, self.spec, self.trained_on = wrapped, spec, n
        self._pending = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        faiss = _faiss()
        removed = int(self._pending.remove_ids(faiss.IDSelectorBatch(ids))) if self._pending.ntotal else 0
        if self._index is None or not self._index.ntotal:
            return removed
        held = _main_ids(self._index)
        present = [int(i) for i in ids[np.isin(ids, held)] if int(i) not in self._tombstones]
        if not present:
            return removed
        if _removable(self.spec):
            return removed + int(self._index.remove_ids(faiss.IDSelectorBatch(np.array(present, np.int64))))
        self._tombstones.update(present)
        self._tomb_array = None
        return removed + len(present)

    @property
    def wants_rebuild(self) -> str | None:
        built, meant = self.spec.rsplit(",", 1)[-1], self.kind_spec.rsplit(",", 1)[-1]
        if self.kind in NAMED and built != meant:  # a file saved before the named kind changed
            return f"{self.kind!r} was built with {built} codes and now means {meant}"
        stored = 0 if self._index is None else int(self._index.ntotal)
        if self._tombstones and len(self._tombstones) >= COMPACT_SHARE * stored:
            return f"{len(self._tombstones)} removed faces still in the index"
        if self.trained_on and "{nlist}" in self.kind_spec and self.count >= RETRAIN_GROWTH * self.trained_on:
            return f"trained on {self.trained_on} faces, now holds {self.count}"
        return None

    @property
    def kind_spec(self) -> str:
        return _structure_spec(self.kind, self.dim)

    # -- search -----------------------------------------------------------------------------
    def set_params(self, params: dict[str, float]) -> None:
        # Parameters travel with each search (faiss.SearchParameters): nothing is set on the index.
        self.params = dict(params)

    def _search_params(self, selector: Any, widen: float) -> Any:
        faiss = _faiss()
        if self._index is not None and "HNSW" in self.spec:
            ef = int(min(MAX_WIDENED, self._param("efSearch") * widen))
            return faiss.SearchParametersHNSW(efSearch=ef, sel=selector)
        if self._index is not None and "IVF" in self.spec:
            nlist = _lists_in(self.spec)
            nprobe = int(min(nlist, (self._param("nprobe") or _default_nprobe(self.spec, nlist)) * widen))
            return faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
        return faiss.SearchParameters(sel=selector) if selector is not None else None

    def _param(self, name: str) -> float:
        """A search parameter: the kind's own setting, else its named kind's default, else :data:`SEARCH_PARAMS`'s."""
        return self.params.get(name) or KIND_PARAMS.get(self.kind, {}).get(name) or SEARCH_PARAMS[name]

    def candidates(self, k: int) -> int:
        """How many neighbours to fetch for ``k`` when the scores are rescored exactly afterwards."""
        return k if self.exact_scores else max(k, int(self._param("rerank")))

    def search(self, vectors: np.ndarray, k: int, subset: np.ndarray | None = None, widen: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        queries = _vectors(vectors, self.dim)
        total = (0 if self._index is None else int(self._index.ntotal)) + int(self._pending.ntotal)
        if total == 0 or self.count == 0:
            return np.full((len(queries), 1), -np.inf, np.float32), np.full((len(queries), 1), -1, np.int64)
        k = max(1, min(k, total))
        if subset is not None:
            selector = _selector(subset)
        elif self._tombstones:
            inner = faiss.IDSelectorBatch(self._tomb())
            selector = faiss.IDSelectorNot(inner)
        else:
            inner = selector = None
        parts = []
        with _threads_for(len(queries)):
            if self._index is not None and self._index.ntotal:
                parts.append(self._index.search(queries, k, params=self._search_params(selector, widen)))
            if self._pending.ntotal:
                params = faiss.SearchParameters(sel=selector) if selector is not None else None
                parts.append(self._pending.search(queries, min(k, int(self._pending.ntotal)), params=params))
        if len(parts) == 1:
            return parts[0]
        scores = np.concatenate([p[0] for p in parts], axis=1)
        ids = np.concatenate([p[1] for p in parts], axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)

    def _tomb(self) -> np.ndarray:
        if self._tomb_array is None:
            self._tomb_array = np.array(sorted(self._tombstones), dtype=np.int64)
        return self._tomb_array

    # -- persistence ------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        faiss = _faiss()
        buffer = io.BytesIO()
        meta = {"spec": self.spec, "trained_on": self.trained_on}
        np.savez(
            buffer,
            meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
            main=faiss.serialize_index(self._index) if self._index is not None else np.zeros(0, np.uint8),
            pending=faiss.serialize_index(self._pending),
            tombstones=self._tomb(),
        )
        return buffer.getvalue()

    def _load(self, data: bytes) -> None:
        faiss = _faiss()
        with np.load(io.BytesIO(data)) as arrays:
            meta = json.loads(arrays["meta"].tobytes())
            main = arrays["main"]
            self._index = faiss.deserialize_index(main) if len(main) else None
            self._pending = faiss.deserialize_index(arrays["pending"])
            self._tombstones = set(int(i) for i in arrays["tombstones"])
        self.spec, self.trained_on = meta["spec"], int(meta["trained_on"])
        for part in (self._index, self._pending):
            if part is not None and part.d != self.dim:
                raise ValueError(f"index holds {part.d}-D vectors, {self.dim} expected")


#: Vectors per inverted list needed before an IVF index is trained (FAISS warns below 39).
TRAIN_PER_LIST = 40
#: At most this many training vectors per list (k-means on more gains little and costs minutes).
TRAIN_SAMPLE_PER_LIST = 64
#: Retrain once the index holds this many times what it was trained on.
RETRAIN_GROWTH = 4
#: Compact once tombstones are this share of the stored vectors.
COMPACT_SHARE = 0.2
#: A widened search (a group restricted by a selector) looks at most this far (efSearch, nprobe).
MAX_WIDENED = 2048


def _default_nprobe(spec: str, nlist: int) -> int:
    """Lists searched when ``nprobe`` is not given: a quarter for 4-bit PQ scanned with SIMD lookups
    (fast-scan, ``…x4fs``), an eighth for other codes, which scan several times slower. At 1 M faces
    (4,096 lists) through the product (first generator): ``ivfsq`` with 512 lists 6.5 ms, 99.4% of
    exact search's correct names and 99.9% of all decisions equal to exact search's; with 256
    lists 98.9% / 99.8%, with 64 lists 88%; fast-scan ``PQ64x4fs`` with 1,024 lists 4.4 ms but 93.5%
    (BENCHMARKS.md)."""
    return max(16, nlist // 4 if spec.endswith("fs") else nlist // 8)


def _is_ivf(index: Any) -> bool:
    return not hasattr(index, "id_map")


def _with_ids(index: Any) -> Any:
    """The index able to take face ids: IVF kinds natively (an IndexIDMap over IVF maps removals
    to the wrong ids, as IVF does not renumber on removal), others inside an IndexIDMap2."""
    faiss = _faiss()
    try:
        faiss.extract_index_ivf(index)
    except RuntimeError:
        return faiss.IndexIDMap2(index)
    return index


def _main_ids(index: Any) -> np.ndarray:
    faiss = _faiss()
    if not _is_ivf(index):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    parts = [
        faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
        for i in range(ivf.nlist)
        if lists.list_size(i)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _nlist_for(n: int) -> int:
    """Inverted lists for ``n`` vectors: the power of two nearest ``4·√n``, between 64 and 65,536."""
    target = 4.0 * math.sqrt(max(n, 1))
    return int(min(65536, max(64, 2 ** round(math.log2(target)))))


def _lists_in(spec: str) -> int:
    match = re.search(r"IVF(\d+)", spec)
    return int(match.group(1)) if match else 1


def _holds_vectors(spec: str) -> bool:
    """Whether the storage keeps exact float vectors (scores and reconstructions are exact)."""
    storage = spec.split(",")[-1].strip()
    return storage in ("Flat", "") or (spec.startswith("HNSW") and "," not in spec) or storage.startswith("RFlat") or storage.startswith("Refine(Flat")


def _removable(spec: str) -> bool:
    return "HNSW" not in spec and "NSG" not in spec


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


#: Named kinds and the factory strings they build; ``{nlist}`` is chosen at training time.
NAMED = {
    "hnsw": "HNSW32,Flat",
    # 128-D: 32-byte codes, about 42 bytes per face with the ids and centroids. "np": no polysemous
    # training (a reordering of the codes for Hamming-distance filtering, which faceshot does not use).
    "ivfpq": "IVF{nlist},PQ{pq}x8np",
    "ivfsq": "IVF{nlist},SQ4",  # 128-D: 64-byte codes, ~72 bytes per face: better candidates, slower scans
}


def _structure_spec(structure: str, dim: int) -> str:
    spec = NAMED.get(structure, structure)
    return spec.replace("{pq}", str(max(1, dim // 4)))


indexes: Registry[VectorIndex] = Registry("index")
indexes.register("flat")(FlatIndex)


AUTO = "auto"
#: The ``auto`` policy, from benchmarks/ann_bench.py and ann_product.py on synthetic LFW-like
#: galleries (BENCHMARKS.md, "Large galleries"): exact search below AUTO_GRAPH_FROM faces
#: (single-probe p50 about 2.6 ms at 100k faces on one core, growing linearly), then an HNSW
#: graph below AUTO_COMPRESSED_FROM, then AUTO_COMPRESSED. Through the product at 1 M faces
#: (second generator, quiet machine): ``hnsw`` (efSearch 448) 1.46 ms p50, 14.5x faster than
#: exact search, 1,998 of 2,000 decisions equal to exact search's, at 792 bytes per face and
#: 110-127 s to build; ``ivfsq`` (512 of 4,096 lists) 4.1 ms, 5x, every decision equal, 72 bytes
#: per face. The graph stops at 2 M faces for memory: 792 bytes per face resident (1.6 GB at 2 M),
#: and saving or reading the index file holds about three more copies of it for a moment (the
#: serialized index, the archive around it, its bytes: counted from the code, not measured),
#: ~5 GB more at 2 M; ``ivfsq`` beyond.
AUTO_GRAPH_FROM = 200_000
AUTO_GRAPH = "hnsw"
AUTO_COMPRESSED_FROM = 2_000_000
AUTO_COMPRESSED = "ivfsq"
#: The kinds ``auto`` chooses from: a saved index of one of them is kept when the gallery is
#: opened, and moved to ``auto``'s choice in the background (with the margin of :func:`resolve_index_kind`'s callers).
AUTO_KINDS = ("flat", AUTO_GRAPH, AUTO_COMPRESSED)


def resolve_index_kind(kind: str, faces: int, dim: int = 128) -> str:
    """The index kind to build for a gallery of ``faces`` faces: ``kind`` itself, or ``"auto"``'s choice.

    ``kind``: ``"auto"``, a named kind (``"flat"``, ``"hnsw"``, ``"ivfpq"``, ``"ivfsq"``) or a FAISS factory string
    (``"HNSW32,Flat"``, ``"IVF4096,PQ32"``), optionally followed by search parameters
    (``"hnsw:efSearch=128"``, ``"ivfpq:nprobe=32,rerank=100"``; see :data:`SEARCH_PARAMS`).
    ``auto`` picks flat exact search below :data:`AUTO_GRAPH_FROM` faces, :data:`AUTO_GRAPH` below
    :data:`AUTO_COMPRESSED_FROM`, else :data:`AUTO_COMPRESSED`. Raises :class:`~faceshot.errors.ConfigError` for a
    kind FAISS cannot build or an unknown parameter.
    """
    structure, params = parse_kind(kind)
    if structure == AUTO:
        if params:
            raise ConfigError(f"'auto' takes no search parameters (got {kind!r}); name the kind, e.g. 'hnsw:efSearch=128'")
        if faces >= AUTO_COMPRESSED_FROM:
            return AUTO_COMPRESSED
        return AUTO_GRAPH if faces >= AUTO_GRAPH_FROM else "flat"
    if not structure:
        raise ConfigError(f"empty index kind {kind!r}; choose auto, {', '.join(indexes.names())}, hnsw, ivfpq or a FAISS factory string")
    if structure not in indexes.names():
        if structure.lower() in NAMED and structure not in NAMED:
            raise ConfigError(f"unknown index {structure!r}; did you mean {structure.lower()!r}?")
        FaissIndex(dim, kind=structure, spec=_structure_spec(structure, dim)).set_params(params)
    elif params:
        raise ConfigError(f"index {structure!r} takes no search parameters, got {', '.join(params)}")
    return kind


def create_index(kind: str, dim: int, data: bytes | None = None) -> VectorIndex:
    """An empty index of ``kind`` (see :func:`resolve_index_kind`; not ``auto``), or one read back from ``data``."""
    structure, params = parse_kind(kind)
    if structure in indexes.names():
        index = indexes.create(structure, dim=dim, data=data)
    else:
        index = FaissIndex(dim, data, kind=structure, spec=_structure_spec(structure, dim))
    index.set_params(params)
    return index


@dataclass(frozen=True)
class IndexHeader:
    """What an index file says about itself."""

    kind: str
    embedder: str
    dim: int
    count: int
    generation: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "embedder": self.embedder,
            "dim": self.dim,
            "count": self.count,
            "generation": self.generation,
            "sha256": self.sha256,
        }


class IndexFileError(Exception):
    """The index file is missing or unusable; the caller rebuilds it. Never reaches users."""


def write_index_file(path: Path, index: VectorIndex, *, embedder: str, generation: int) -> IndexHeader:
    """Save ``index`` to ``path`` atomically: a reader sees the old file or the new one, never half.

    Not fsynced: the file is derived data, and a torn file after a power cut fails its checksum
    and is rebuilt.
    """
    payload = index.to_bytes()
    header = IndexHeader(
        kind=index.kind,
        embedder=embedder,
        dim=index.dim,
        count=index.count,
        generation=generation,
        sha256=hashlib.sha256(payload).hexdigest(),
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(MAGIC)
            file.write(json.dumps(header.to_dict()).encode() + b"\n")
            file.write(payload)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    return header


def read_index_file(path: Path) -> tuple[VectorIndex, IndexHeader]:
    """Read an index file, verifying its checksum; :class:`IndexFileError` says why it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IndexFileError("missing") from None
    except OSError as exc:
        raise IndexFileError(f"unreadable ({exc.strerror or exc})") from None
    if not data.startswith(MAGIC):
        raise IndexFileError("corrupt: not a faceshot index file")
    end = data.find(b"\n", len(MAGIC))
    try:
        fields = json.loads(data[len(MAGIC) : end])
        header = IndexHeader(**{name: fields[name] for name in IndexHeader.__dataclass_fields__})
    except (ValueError, KeyError, TypeError):
        raise IndexFileError("corrupt: damaged header") from None
    payload = data[end + 1 :]
    if end < 0 or hashlib.sha256(payload).hexdigest() != header.sha256:
        raise IndexFileError("corrupt: checksum mismatch")
    try:
        index = create_index(header.kind, header.dim, payload)
    except Exception as exc:  # faiss raises RuntimeError for bad bytes, the registry ConfigError
        raise IndexFileError(f"corrupt: {exc}") from None
    if index.count != header.count:
        raise IndexFileError(f"corrupt: holds {index.count} vectors, header says {header.count}")
    return index, header
