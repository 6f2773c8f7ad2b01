"""Many images at once: every file's faces and embeddings, using every core, in input order.

The work is a pipeline of two overlapped stages. Worker processes (or threads) decode each image, detect its faces, place the landmarks and cut the face chips; meanwhile this
thread embeds the chips already cut, batched across images, so the embedder runs large batches
while the detector keeps every core busy. At most a few images per worker are in flight, so memory
stays bounded however many files there are, and results come back in the order of the paths.

A bad file does not stop the run: its result carries the error instead of faces.

The engine travels to worker processes as its description (:class:`~faceshot.spec.EngineSpec`), so a
custom :class:`~faceshot.detect.Detector`, detector options, the pixel limit and a trained model all
reach them; each worker builds it once and gets its share of the cores for onnxruntime
(:func:`faceshot.onnx_graphs.set_thread_budget`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Literal, Protocol, Sequence, TypeVar

import numpy as np

from faceshot.detect import Detector
from faceshot.embed import DEFAULT_EMBEDDER, Embedder
from faceshot.engine import Engine, Multiple
from faceshot.errors import ConfigError, FaceshotError
from faceshot.io import ImageInput, read_bytes
from faceshot.onnx_graphs import available_cores, set_thread_budget
from faceshot.results import Face, FaceEmbedding
from faceshot.spec import DEFAULT_DETECTOR, EngineSpec

__all__ = [
    "FileResult", "FileFaces", "bulk_engine", "represent_files", "represent_batch", "detect_files",
    "one_vector_per_file", "ordered_map", "Backend", "Runner", "LocalRunner", "file_digest",
]

Backend = Literal["threads", "processes"]
T = TypeVar("T")
R = TypeVar("R")

#: Images in flight per worker: enough to keep the workers busy while a batch is embedded.
AHEAD_PER_WORKER = 4


@dataclass(frozen=True)
class FileResult:
    """The faces of one file, or why the file could not be used (``error`` is then set).

    ``found`` counts the faces detected; with ``one_face`` set, ``faces`` holds only the chosen one.
    ``chips``: the aligned chip of each face in ``faces`` (``(N, size, size, 3)`` uint8), when asked for.
    """

    path: str
    faces: list[FaceEmbedding] = field(default_factory=list)
    found: int = 0
    error: FaceshotError | None = None
    chips: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class FileFaces:
    """The faces found in one file (no embeddings), or why the file could not be used."""

    path: str
    faces: list[Face] = field(default_factory=list)
    error: FaceshotError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, eq=False)
class _Cut:
    """The first stage's output for one file: the faces to embed and their chips."""

    path: str
    faces: list[Face]
    chips: np.ndarray
    found: int
    error: FaceshotError | None = None


def _cut(engine: Engine, path: str, one_face: Multiple | None, source: ImageInput | None = None) -> _Cut:
    """Decode, detect and align one file (the part of the work that runs on the workers).

    ``source``: the file's content already read (bytes, or a stream named after ``path``), else
    ``path`` is read."""
    if source is None:
        source = path
    try:
        if one_face is None:
            image = engine.load(source)
            faces = engine.detector.detect(image)
            found = len(faces)
        else:
            image, face, found = engine.choose_face(source, multiple=one_face)
            faces = [face]
        return _Cut(path, faces, engine.aligner.align(image, faces), found)
    except FaceshotError as exc:
        return _Cut(path, [], np.empty((0, 0, 0, 3), np.uint8), 0, exc)


# The engine of a worker process: it detects and aligns; the parent process embeds.
_worker_engine: Engine | None = None


def _start_worker(spec: EngineSpec, threads: int) -> None:
    global _worker_engine
    # This worker's share of the cores, for any onnxruntime session it starts (cnn-onnx's network).
    set_thread_budget(threads)
    # Workers never embed: the embedder is built (to know its aligner) but its model never loaded.
    _worker_engine = spec.build()


def _in_worker(task: Callable[[Engine, str], R], path: str) -> R:
    assert _worker_engine is not None
    return task(_worker_engine, path)


def _on_workers(
    task: Callable[[Engine, str], R], names: list[str], engine: Engine, workers: int, backend: Backend
) -> Iterator[Future[R]]:
    """``task(engine, name)`` for every name on a pool of ``workers``, as futures in input order.

    ``task`` must be a module-level function: worker processes receive it, and ``engine.spec``,
    pickled, from which each builds the same engine once (models load where they run).
    """
    pool: Executor
    if backend == "processes":
        try:
            pickle.dumps(engine.spec)
        except Exception as exc:  # pickle raises TypeError, AttributeError, PicklingError, among others
            raise ConfigError(
                f"the engine ({engine.spec}) cannot be sent to worker processes: {exc}; make its detector "
                f"and embedder picklable, or use backend='threads'"
            ) from None
        threads = max(1, available_cores() // workers)
        pool = ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(engine.spec, threads))
        call: Callable[[str], R] = functools.partial(_in_worker, task)
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="faceshot-cut")
        call = functools.partial(task, engine)
    with pool:
        yield from ordered_map(pool, call, names, workers * AHEAD_PER_WORKER)


def ordered_map(executor: Executor, fn: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[Future[R]]:
    """Submit ``fn(item)`` for each item, at most ``ahead`` at a time; yield the futures in input order.

    Unlike :meth:`Executor.map`, which submits everything at once, this keeps memory bounded and
    lets the caller see whether the next result is ready (``future.done()``) before waiting on it.
    """
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(executor.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft()
    while pending:
        yield pending.popleft()


def bulk_engine(
    engine: Engine | EngineSpec | None, detector: str | Detector | None, embedder: str | Embedder | None
) -> Engine:
    """The engine a bulk call runs: ``engine`` (built once per process from a spec), or one made from
    ``detector`` and ``embedder`` (the older keywords; not both ways at once)."""
    if engine is not None:
        if detector is not None or embedder is not None:
            raise ConfigError("give an engine, or a detector and embedder, not both")
        return engine.build() if isinstance(engine, EngineSpec) else engine
    return EngineSpec(detector or DEFAULT_DETECTOR, embedder or DEFAULT_EMBEDDER).build()


def represent_files(
    paths: Iterable[str | os.PathLike],
    *,
    engine: Engine | EngineSpec | None = None,
    detector: str | Detector | None = None,
    embedder: str | Embedder | None = None,
    one_face: Multiple | None = None,
    workers: int | None = None,
    backend: Backend = "processes",
    batch_size: int = 32,
    keep_chips: bool = False,
) -> Iterator[FileResult]:
    """Yield one :class:`FileResult` per path, in the order given.

    ``engine``: the engine (or its :class:`~faceshot.spec.EngineSpec`) to detect, align and embed
    with: its detector and options, pixel limit and embedder reach every worker. ``detector`` and
    ``embedder`` instead: texts or instances for an engine with the other parts left at their defaults.
    ``one_face``: embed only one face per photo, chosen as :meth:`Engine.one_face` does
    (``"largest"``, ``"central"`` or ``"error"``); a photo without a face is then an error result.
    ``workers``: how many images are decoded and searched at once (default: one per core); 1 runs
    everything in this thread. ``backend``: ``"processes"`` (default) or ``"threads"``. dlib's
    detector holds Python's lock while it searches, so threads overlap decoding and embedding with
    detection but do not detect on two cores at once; measured in ``benchmarks/end_to_end.py``,
    processes are faster. Threads keep one copy of the models in memory.
    ``batch_size``: the most chips embedded in one call (bigger batches: more memory, little speed).
    ``keep_chips``: also return each face's aligned chip (for quality checks, thumbnails, crops).
    """
    _check_backend(backend)
    if one_face not in (None, "largest", "central", "error"):
        raise ConfigError(f"one_face must be 'largest', 'central' or 'error', got {one_face!r}")
    names = [os.fspath(path) for path in paths]
    engine = bulk_engine(engine, detector, embedder)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(names) <= 1:
        for name in names:
            yield from _embed([_cut(engine, name, one_face)], engine, keep_chips)
        return
    ready: list[_Cut] = []
    chips = 0
    cut = functools.partial(_cut, one_face=one_face)
    for number, future in enumerate(_on_workers(cut, names, engine, workers, backend)):
        if number == 0 and hasattr(engine.embedder, "load"):
            # While the workers start and cut the first photo, start the embedder here (ONNX
            # Runtime's session: 0.7 s of a command's 1.8 s start-up) instead of after it.
            engine.embedder.load()
        # Embed what is cut whenever the next image is not ready yet (the workers go on meanwhile),
        # or once a batch is full.
        if ready and (chips >= batch_size or not future.done()):
            yield from _embed(ready, engine, keep_chips)
            ready, chips = [], 0
        ready.append(future.result())
        chips += len(ready[-1].chips)
    yield from _embed(ready, engine, keep_chips)


def represent_batch(
    items: Sequence[tuple[str, ImageInput]],
    engine: Engine,
    *,
    one_face: Multiple | None = None,
    keep_chips: bool = False,
) -> list[FileResult]:
    """:func:`represent_files` for a batch in this process: ``items`` are ``(name, content)`` pairs.

    The content (bytes, or a binary stream whose ``name`` is the file's, so errors name it) is
    decoded, searched and aligned here, one file after another, and every chip of the batch is
    embedded in one call. For a worker that reads its own files, such as the Ray runner's actors.
    """
    cuts = [_cut(engine, name, one_face, source) for name, source in items]
    return list(_embed(cuts, engine, keep_chips))


def detect_files(
    paths: Iterable[str | os.PathLike],
    *,
    engine: Engine | EngineSpec | None = None,
    detector: str | Detector | None = None,
    workers: int | None = None,
    backend: Backend = "processes",
) -> Iterator[FileFaces]:
    """Yield the faces found in each file (boxes, scores, landmarks), in the order given.

    The same worker pool as :func:`represent_files`, without the embedding stage (``engine``: as there).
    """
    _check_backend(backend)
    names = [os.fspath(path) for path in paths]
    engine = bulk_engine(engine, detector, None)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(names) <= 1:
        yield from (_locate(engine, name) for name in names)
        return
    for future in _on_workers(_locate, names, engine, workers, backend):
        yield future.result()


def _locate(engine: Engine, path: str) -> FileFaces:
    try:
        return FileFaces(path, engine.detect(path))
    except FaceshotError as exc:
        return FileFaces(path, error=exc)


def _check_backend(backend: str) -> None:
    if backend not in ("threads", "processes"):
        raise ConfigError(f"backend must be 'threads' or 'processes', got {backend!r}")


def _embed(cuts: list[_Cut], engine: Engine, keep_chips: bool) -> Iterator[FileResult]:
    """Embed the chips of several files in one call and yield each file's result."""
    chips = [cut.chips for cut in cuts if cut.error is None and len(cut.chips)]
    vectors = engine.embedder.embed(np.concatenate(chips)) if chips else np.zeros((0, 0), np.float32)
    start = 0
    for cut in cuts:
        if cut.error is not None:
            yield FileResult(cut.path, error=cut.error)
            continue
        mine = vectors[start : start + len(cut.faces)]
        start += len(cut.faces)
        faces = [FaceEmbedding(face, vector) for face, vector in zip(cut.faces, mine)]
        yield FileResult(cut.path, faces, cut.found, chips=cut.chips if keep_chips else None)


def one_vector_per_file(
    paths: Iterable[str | os.PathLike],
    *,
    engine: Engine | EngineSpec | None = None,
    detector: str | Detector | None = None,
    embedder: str | Embedder | None = None,
    multiple: Multiple = "largest",
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """``{path: embedding}`` of one face per photo (``multiple`` picks it); photos without one are absent.

    ``engine``, ``detector``, ``embedder``: as in :func:`represent_files`. ``progress(done, total)``
    is called after each photo. This is what the evaluation protocols use.
    """
    names = [os.fspath(path) for path in paths]
    vectors = {}
    results = represent_files(names, engine=bulk_engine(engine, detector, embedder), one_face=multiple, workers=workers)
    for done, result in enumerate(results, start=1):
        if result.ok:
            vectors[result.path] = result.faces[0].embedding
        if progress is not None:
            progress(done, len(names))
    return vectors


class Runner(Protocol):
    """Where a folder enrollment's photos are read, hashed, detected and embedded.

    :meth:`Gallery.enroll_dir <faceshot.gallery.Gallery.enroll_dir>` plans the work, skips what
    is enrolled and records what comes back; a runner only computes. :class:`LocalRunner` uses
    this machine's cores; :class:`faceshot.bulk_ray.RayRunner` a Ray cluster.
    """

    #: Whether :meth:`represent` hashes each file it reads, so a gallery with nothing enrolled yet
    #: needs no separate hashing pass.
    hashes_while_embedding: bool
    #: Whether sources may be fsspec URLs (``s3://…``) besides local paths.
    reads_urls: bool

    def digests(self, sources: Sequence[str]) -> list[str | FaceshotError]:
        """The SHA-256 (hex) of each source's bytes, or the error that says why it cannot be read."""
        ...

    def represent(
        self, engine: Engine, items: Sequence[tuple[str, str | None]], *, one_face: Multiple | None,
        keep_chips: bool = True,
    ) -> Iterator[tuple[int, str, FileResult]]:
        """``(index, sha256, result)`` for each ``(source, sha256 or None)`` item, in any order.

        ``sha256`` is the hash of the bytes the result was computed from; ``one_face`` and
        ``keep_chips`` as in :func:`represent_files` (``None``: every face of each photo).
        """
        ...


class LocalRunner:
    """The runner on this machine: hashes in this process, detects in ``workers`` processes
    (:func:`represent_files`), results in input order."""

    hashes_while_embedding = False
    reads_urls = False

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers

    def digests(self, sources: Sequence[str]) -> list[str | FaceshotError]:
        return [file_digest(source) for source in sources]

    def represent(
        self, engine: Engine, items: Sequence[tuple[str, str | None]], *, one_face: Multiple | None,
        keep_chips: bool = True,
    ) -> Iterator[tuple[int, str, FileResult]]:
        digests = [digest or "" for _, digest in items]
        results = represent_files([source for source, _ in items], engine=engine, one_face=one_face,
                                  workers=self.workers, keep_chips=keep_chips)
        for index, result in enumerate(results):
            digest = digests[index] or file_digest(result.path)
            yield index, digest if isinstance(digest, str) else "", result


def file_digest(source: str) -> str | FaceshotError:
    """The SHA-256 (hex) of a file's bytes, or the :class:`~faceshot.errors.ImageError` that says why it cannot be read."""
    try:
        return hashlib.sha256(read_bytes(source)).hexdigest()
    except FaceshotError as exc:
        return exc
