"""The three-line case: module functions over a shared default :class:`~faceshot.engine.Engine`.

    import faceshot
    result = faceshot.verify("passport.jpg", "camera.jpg")
    print(result.same, result.score)
"""

from __future__ import annotations

import functools

import numpy as np

from faceshot.embed import DEFAULT_EMBEDDER
from faceshot.engine import Engine, Multiple
from faceshot.io import ImageInput
from faceshot.results import Face, FaceEmbedding, Verification

__all__ = ["engine", "detect", "embed", "represent", "verify"]


@functools.lru_cache(maxsize=8)
def engine(detector: str = "hog", embedder: str = DEFAULT_EMBEDDER) -> Engine:
    """The shared engine for this configuration (built once per process)."""
    return Engine(detector=detector, embedder=embedder)


def detect(image: ImageInput, *, detector: str = "hog") -> list[Face]:
    """Every face in the image, largest first: box, detector score and five landmarks each."""
    return engine(detector).detect(image)


def embed(image: ImageInput, *, detector: str = "hog", embedder: str = DEFAULT_EMBEDDER) -> np.ndarray:
    """One unit-length embedding per face, largest face first, as an ``(N, dim)`` array."""
    return engine(detector, embedder).embed(image)


def represent(image: ImageInput, *, detector: str = "hog", embedder: str = DEFAULT_EMBEDDER) -> list[FaceEmbedding]:
    """Every face with its embedding, largest first."""
    return engine(detector, embedder).represent(image)


def verify(
    a: ImageInput,
    b: ImageInput,
    *,
    threshold: float | None = None,
    far: float | None = None,
    multiple: Multiple = "largest",
    detector: str = "hog",
    embedder: str = DEFAULT_EMBEDDER,
) -> Verification:
    """Same person or not; see :meth:`faceshot.engine.Engine.verify` for the options."""
    return engine(detector, embedder).verify(a, b, threshold=threshold, far=far, multiple=multiple)
