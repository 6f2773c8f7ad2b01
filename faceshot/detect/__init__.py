"""Face detectors: ``Detector.detect(image) -> list[Face]``, chosen by name from ``detectors``.

Every detector returns boxes, a confidence and five landmarks per face, in the coordinates of
the image it was given, largest face first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from faceshot.registry import Registry
from faceshot.results import DLIB_5, Face

__all__ = ["Detector", "detectors", "create_detector"]


class Detector(ABC):
    """Finds faces in an RGB ``uint8`` image."""

    name: str
    #: The landmark scheme of the faces :meth:`detect` returns (:data:`faceshot.results.SCHEMES`);
    #: an engine refuses an aligner that needs another.
    scheme: str = DLIB_5

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Face]:
        """Every face found, largest first; an empty list when there is none."""

    def check(self) -> None:
        """Load now what :meth:`detect` needs from files (a user-supplied or fetched model), so a
        missing or wrong one is a :class:`~faceshot.errors.ModelError` before any work; nothing
        for detectors whose models ship with the package."""


detectors: Registry[Detector] = Registry("detector")


def create_detector(name: str, **options: object) -> Detector:
    """Build the detector registered as ``name`` (``hog`` or ``cnn`` by default)."""
    return detectors.create(name, **options)


from faceshot.detect import dlib_detectors  # noqa: E402,F401  (registers hog and cnn)
from faceshot.detect import mtcnn  # noqa: E402,F401  (registers mtcnn)
from faceshot.detect import yunet  # noqa: E402,F401  (registers yunet)
