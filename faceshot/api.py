"""The three-line case: module functions over a shared default :class:`~faceshot.engine.Engine`.

    import faceshot
    result = faceshot.verify("passport.jpg", "camera.jpg")
    print(result.same, result.score)

``detector`` and ``embedder`` take the texts of :mod:`faceshot.spec` (``"hog:upsample=1"``,
``"hog>cnn-onnx"``, ``"model.onnx"``) or instances; each configuration's engine is built once per
process and shared.
"""

from __future__ import annotations

import numpy as np

from faceshot.detect import Detector
from faceshot.embed import DEFAULT_EMBEDDER, Embedder
from faceshot.engine import Engine, Multiple
from faceshot.io import DEFAULT_MAX_PIXELS, ImageInput
from faceshot.results import Face, FaceEmbedding, Verification
from faceshot.spec import DEFAULT_DETECTOR, EngineSpec

__all__ = ["engine", "detect", "embed", "represent", "verify"]


def engine(
    detector: str | Detector = DEFAULT_DETECTOR,
    embedder: str | Embedder = DEFAULT_EMBEDDER,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Engine:
    """The shared engine for this configuration (built once per process; see :class:`EngineSpec`)."""
    return EngineSpec(detector, embedder, max_pixels=max_pixels).build()


def detect(image: ImageInput, *, detector: str | Detector = DEFAULT_DETECTOR) -> list[Face]:
    """Every face in the image, largest first: box, detector score and five landmarks each."""
    return engine(detector).detect(image)


def embed(
    image: ImageInput, *, detector: str | Detector = DEFAULT_DETECTOR, embedder: str | Embedder = DEFAULT_EMBEDDER
) -> np.ndarray:
    """One unit-length embedding per face, largest face first, as an ``(N, dim)`` array."""
    return engine(detector, embedder).embed(image)


def represent(
    image: ImageInput, *, detector: str | Detector = DEFAULT_DETECTOR, embedder: str | Embedder = DEFAULT_EMBEDDER
) -> list[FaceEmbedding]:
    """Every face with its embedding, largest first."""
    return engine(detector, embedder).represent(image)


def verify(
    a: ImageInput,
    b: ImageInput,
    *,
    threshold: float | None = None,
    far: float | None = None,
    multiple: Multiple = "largest",
    detector: str | Detector = DEFAULT_DETECTOR,
    embedder: str | Embedder = DEFAULT_EMBEDDER,
) -> Verification:
    """Same person or not; see :meth:`faceshot.engine.Engine.verify` for the options."""
    return engine(detector, embedder).verify(a, b, threshold=threshold, far=far, multiple=multiple)
