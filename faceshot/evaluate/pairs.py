"""Score the pairs of a pairs file with faceshot's pipeline, or with a peer library's, for the protocol."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from faceshot.bulk import bulk_engine, one_vector_per_file
from faceshot.engine import Engine, Multiple
from faceshot.errors import ConfigError
from faceshot.evaluate.lfw import Pair
from faceshot.evaluate.verification import UNSCORED
from faceshot.spec import EngineSpec

__all__ = ["ScoredPairs", "score_pairs", "score_pairs_face_recognition", "PEERS"]


@dataclass(frozen=True)
class ScoredPairs:
    """One score per pair (``UNSCORED`` where an image had no usable face) and the images without one."""

    name: str
    scores: np.ndarray
    same: np.ndarray
    folds: np.ndarray
    no_face: tuple[str, ...]

    @property
    def unscored(self) -> int:
        return int(np.sum(self.scores == UNSCORED))


def _assemble(name: str, pairs: Sequence[Pair], vectors: dict[str, np.ndarray], score: Callable) -> ScoredPairs:
    values = [
        score(vectors[str(p.a)], vectors[str(p.b)]) if str(p.a) in vectors and str(p.b) in vectors else UNSCORED
        for p in pairs
    ]
    images = {str(path) for p in pairs for path in (p.a, p.b)}
    return ScoredPairs(
        name=name,
        scores=np.array(values, dtype=np.float64),
        same=np.array([p.same for p in pairs]),
        folds=np.array([p.fold for p in pairs]),
        no_face=tuple(sorted(images - set(vectors))),
    )


def score_pairs(
    pairs: Sequence[Pair],
    *,
    engine: Engine | EngineSpec | None = None,
    detector: str | None = None,
    embedder: str | None = None,
    multiple: Multiple = "central",
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoredPairs:
    """faceshot's pipeline: one face per image (``multiple`` picks it), cosine similarity per pair.

    ``engine`` (or its spec): the pipeline to score with; ``detector``/``embedder``: texts for one
    with the other parts at their defaults (see :func:`faceshot.bulk.represent_files`).
    """
    engine = bulk_engine(engine, detector, embedder)
    paths = sorted({str(path) for p in pairs for path in (p.a, p.b)})
    vectors = one_vector_per_file(paths, engine=engine, multiple=multiple, workers=workers, progress=progress)
    label = f"faceshot ({engine.spec.detector_text}, {engine.spec.embedder_text})"
    return _assemble(label, pairs, vectors, lambda a, b: float(a @ b))


def _face_recognition_encoding(path: str) -> np.ndarray | None:
    import face_recognition

    encodings = face_recognition.face_encodings(face_recognition.load_image_file(path))
    return encodings[0] if encodings else None


def score_pairs_face_recognition(
    pairs: Sequence[Pair],
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoredPairs:
    """The face_recognition library as its users call it: first face's encoding, score = −distance."""
    try:
        import face_recognition  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--compare face_recognition needs the face_recognition package: "
            "pip install --no-deps face_recognition (it runs on the dlib models faceshot installs)"
        ) from None
    from concurrent.futures import ProcessPoolExecutor

    paths = sorted({str(path) for p in pairs for path in (p.a, p.b)})
    vectors = {}
    with ProcessPoolExecutor(workers or os.cpu_count() or 1) as pool:
        for done, (path, vector) in enumerate(
            zip(paths, pool.map(_face_recognition_encoding, paths, chunksize=8)), start=1
        ):
            if vector is not None:
                vectors[path] = vector
            if progress is not None:
                progress(done, len(paths))
    return _assemble("face_recognition 1.3 (hog, distance)", pairs, vectors, lambda a, b: -float(np.linalg.norm(a - b)))


PEERS = {"face_recognition": score_pairs_face_recognition}
