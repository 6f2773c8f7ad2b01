"""A fallback chain of detectors (``hog>cnn-onnx`` in the engine grammar): each is tried in turn
until one finds a face, so the fast detector serves most photos and the slower one only those it
misses."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from faceshot.errors import ConfigError

from faceshot.detect import Detector
from faceshot.results import Face

__all__ = ["FallbackDetector"]


class FallbackDetector(Detector):
    """Runs ``members`` in order and returns the faces of the first that finds any (largest first).

    ``name`` is the members' names joined by ``>``. Picklable when its members are.
    """

    def __init__(self, members: Sequence[Detector]) -> None:
        if len(members) < 2:
            raise ConfigError("a fallback chain needs at least two detectors")
        self.members = tuple(members)
        self.name = ">".join(member.name for member in self.members)
        schemes = {member.scheme for member in self.members}
        if len(schemes) > 1:
            raise ConfigError(
                f"the detectors of {self.name} give landmarks of different schemes "
                f"({', '.join(f'{m.name}: {m.scheme}' for m in self.members)}): one chain needs one scheme"
            )
        self.scheme = schemes.pop()

    def detect(self, image: np.ndarray) -> list[Face]:
        for member in self.members:
            faces = member.detect(image)
            if faces:
                return faces
        return []

    def __repr__(self) -> str:
        return f"FallbackDetector({self.name!r})"
