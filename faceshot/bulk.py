"""Many images at once: every file's faces and embeddings, spread over the cores, in input order.

A bad file does not stop the run: its result carries the error instead of faces.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from faceshot.embed import DEFAULT_EMBEDDER, create_embedder
from faceshot.engine import Engine, Multiple
from faceshot.errors import FaceshotError
from faceshot.results import FaceEmbedding

__all__ = ["FileResult", "represent_files", "one_vector_per_file"]


@dataclass(frozen=True)
class FileResult:
    """The faces of one file, or why the file could not be used (``error`` is then set).

    ``found`` counts the faces detected; with ``one_face`` set, ``faces`` holds only the chosen one.
    """

    path: str
    faces: list[FaceEmbedding] = field(default_factory=list)
    found: int = 0
    error: FaceshotError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_worker_engine: Engine | None = None


def _start_worker(detector: str, embedder: str, threads: int | None = None) -> None:
    global _worker_engine
    _worker_engine = Engine(detector=detector, embedder=create_embedder(embedder, threads=threads))


def _represent(path: str, one_face: Multiple | None) -> FileResult:
    assert _worker_engine is not None
    try:
        if one_face is None:
            faces = _worker_engine.represent(path)
            return FileResult(path, faces, len(faces))
        face, found = _worker_engine.one_face(path, multiple=one_face)
        return FileResult(path, [face], found)
    except FaceshotError as exc:
        return FileResult(path, error=exc)


def represent_files(
    paths: Iterable[str | os.PathLike],
    *,
    detector: str = "hog",
    embedder: str = DEFAULT_EMBEDDER,
    one_face: Multiple | None = None,
    workers: int | None = None,
) -> Iterator[FileResult]:
    """Yield one :class:`FileResult` per path, in the order given.

    ``one_face``: embed only one face per photo, chosen as :meth:`Engine.one_face` does
    (``"largest"``, ``"central"`` or ``"error"``); a photo without a face is then an error result.
    ``workers``: processes to use (default: one per core); 1 runs in this process.
    """
    names = [os.fspath(path) for path in paths]
    task = functools.partial(_represent, one_face=one_face)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(names) <= 1:
        _start_worker(detector, embedder)
        yield from map(task, names)
        return
    # Each process embeds with its share of the cores, so that the processes do not fight over them.
    share = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(detector, embedder, share)) as pool:
        yield from pool.map(task, names, chunksize=4)


def one_vector_per_file(
    paths: Iterable[str | os.PathLike],
    *,
    detector: str = "hog",
    embedder: str = DEFAULT_EMBEDDER,
    multiple: Multiple = "largest",
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """``{path: embedding}`` of one face per photo (``multiple`` picks it); photos without one are absent.

    ``progress(done, total)`` is called after each photo. This is what the evaluation protocols use.
    """
    names = [os.fspath(path) for path in paths]
    vectors = {}
    results = represent_files(names, detector=detector, embedder=embedder, one_face=multiple, workers=workers)
    for done, result in enumerate(results, start=1):
        if result.ok:
            vectors[result.path] = result.faces[0].embedding
        if progress is not None:
            progress(done, len(names))
    return vectors
