"""Aligners: ``Aligner.align(image, faces) -> ndarray[N, size, size, 3]``, chosen by name from ``aligners``.

An embedder is trained on chips cut one particular way; it names the aligner it needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from faceshot.registry import Registry
from faceshot.results import DLIB_5, Face

__all__ = ["Aligner", "aligners", "create_aligner"]


class Aligner(ABC):
    """Cuts each face out of the image as an upright square chip of ``size`` pixels."""

    name: str
    size: int
    #: The landmark scheme it aligns from (:data:`faceshot.results.SCHEMES`).
    scheme: str = DLIB_5

    @abstractmethod
    def align(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """One ``(size, size, 3)`` uint8 chip per face, in the order given."""


aligners: Registry[Aligner] = Registry("aligner")


def create_aligner(name: str, **options: object) -> Aligner:
    """Build the aligner registered as ``name``."""
    return aligners.create(name, **options)


from faceshot.align import dlib_chip  # noqa: E402,F401  (registers dlib-5pt)
from faceshot.align import arcface  # noqa: E402,F401  (registers arcface-112)
