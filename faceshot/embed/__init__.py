"""Embedders: ``Embedder.embed(chips) -> ndarray[N, dim]`` of unit-length vectors, chosen by name.

An embedder names the aligner whose chips it was trained on, and may carry a calibration (its
default threshold and false-accept-rate table, measured on LFW) so that verification can be asked
at an operating point rather than with a bare number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from faceshot.match import Calibration
from faceshot.registry import Registry

__all__ = ["Embedder", "embedders", "create_embedder", "normalize", "DEFAULT_EMBEDDER"]

#: dlib's face ResNet converted to ONNX: dlib's vectors (cosine >= 0.9999), about 12x faster per core.
DEFAULT_EMBEDDER = "dlib-resnet-onnx"


class Embedder(ABC):
    """Maps aligned face chips to unit-length vectors; faces of one person land close together."""

    name: str
    dim: int
    aligner: str

    @abstractmethod
    def embed(self, chips: np.ndarray) -> np.ndarray:
        """``(N, size, size, 3)`` uint8 chips → ``(N, dim)`` float32 unit vectors."""

    @property
    def space(self) -> str:
        """The vector space of this embedder's vectors: embedders of one space give interchangeable
        vectors (the same network run by another engine), so a gallery may mix them. By default, the name."""
        return self.name

    @property
    def calibration(self) -> Calibration | None:
        """The measured operating points of this embedder, or ``None`` when it has none."""
        return Calibration.bundled(self.space)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (rows of zeros stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


embedders: Registry[Embedder] = Registry("embedder")


def create_embedder(name: str, **options: object) -> Embedder:
    """Build the embedder registered as ``name``, or load a model from a path ending in ``.onnx``:
    one described by a model card (``card=FILE``, or ``<model>.card.json`` beside it: see
    :mod:`faceshot.embed.card`), else one made by ``faceshot train``."""
    if name.lower().endswith(".onnx"):
        from faceshot.embed.card import CardEmbedder, card_beside
        from faceshot.embed.onnx_model import OnnxModelEmbedder

        card = options.pop("card", None) or card_beside(name)
        if card is not None:
            return CardEmbedder(name, card, **options)  # type: ignore[arg-type]
        return OnnxModelEmbedder(name, **options)  # type: ignore[arg-type]
    return embedders.create(name, **options)


from faceshot.embed import dlib_resnet  # noqa: E402,F401  (registers dlib-resnet)
from faceshot.embed import dlib_onnx  # noqa: E402,F401  (registers dlib-resnet-onnx)
