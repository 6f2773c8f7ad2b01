"""The vector index: derived from the database, saved beside it, rebuilt whenever in doubt.

:class:`VectorIndex` is the seam for index types, chosen by name from ``indexes`` (the way FAISS
builds one from a factory string). ``flat`` is exact inner-product search over face ids, which on
unit vectors is the cosine similarity faceshot reports; an HNSW or IVF-PQ index for large
galleries registers beside it and the rest of the store does not change.

**Index file** (``<db>.faiss``), one file so that one ``os.replace`` swaps it whole::

    faceshot-index 1\\n
    {"kind": "flat", "embedder": "dlib-resnet", "dim": 128, "count": 42, "generation": 17,
     "sha256": "<hex digest of the payload>"}\\n
    <payload: the index as faiss.serialize_index writes it>

``generation`` is the database's change counter when the index was made; a file whose generation,
count, embedder or checksum disagree with the database is not used (see :func:`read_index_file`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
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
            selector = faiss.IDSelectorBatch(np.asarray(subset, dtype=np.int64))
            return self._index.search(queries, k, params=faiss.SearchParameters(sel=selector))

    def ids(self) -> np.ndarray:
        return _faiss().vector_to_array(self._index.id_map).astype(np.int64)

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


def _vectors(vectors: np.ndarray, dim: int) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))
    return array


indexes: Registry[VectorIndex] = Registry("index")
indexes.register("flat")(FlatIndex)


#: What ``"auto"`` may choose from, by gallery size. Exact search only for now: the ANN policy
#: (HNSW, then compressed codes with re-ranking, past the sizes where exact search is too slow)
#: is measured and written here by the index work.
AUTO = "auto"


def resolve_index_kind(kind: str, faces: int) -> str:
    """The index kind to build for a gallery of ``faces`` faces: ``kind`` itself, or ``"auto"``'s choice.

    Raises :class:`~faceshot.errors.ConfigError` for a kind that is not registered.
    """
    if kind == AUTO:
        return "flat"
    if kind not in indexes.names():
        raise ConfigError(f"unknown index {kind!r}; choose one of: {', '.join([AUTO, *indexes.names()])}")
    return kind


def create_index(kind: str, dim: int, data: bytes | None = None) -> VectorIndex:
    """An empty index of ``kind`` (``"flat"``), or one read back from ``data``."""
    return indexes.create(kind, dim=dim, data=data)


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
