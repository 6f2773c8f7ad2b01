"""A fallback chain of detectors (``hog>cnn-onnx`` in the engine grammar): each is tried in turn
until one finds a face, so the fast detector serves most photos and the slower one only those it
misses."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from faceshot.errors import ConfigError

from faceshot.detect import Detector, search
from faceshot.results import Face

#: The turns (degrees clockwise) of a photo stored sideways.
SIDEWAYS = (90, 270)

__all__ = ["FallbackDetector"]


class FallbackDetector(Detector):
    """Runs ``members`` in order and returns the faces of the first that finds any (largest first).

    ``name`` is the members' names joined by ``>``. Picklable when its members are.

    One exception: a photo stored sideways (turned by 90° or 270° without an EXIF orientation
    tag). The first member finds no face in it as stored, but a later one may (dlib's CNN finds
    turned faces), and the landmarks then put on that sideways face are an upright face's: its
    chip and vector would be wrong without a sign of it (obama.jpg turned by 90°: cosine 0.87
    against another photo of him, under the threshold). So when a later member finds faces, the
    first is asked once more on the photo turned by 90° and 270°; if it finds a face there, the
    chain returns none, and callers say the photo is stored sideways
    (:func:`faceshot.choice.turned_face`). This costs two more searches of the first member, only
    on photos where it found nothing; of LFW's 13,233 photos, none of the 36 that HOG misses is
    found turned by 90° or 270°.
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
        first = self.members[0]
        faces = first.detect(image)
        if faces:
            return faces
        for member in self.members[1:]:
            faces = member.detect(image)
            if faces:
                return [] if self._sideways(first, image) else faces
        return []

    def check(self) -> None:
        for member in self.members:
            member.check()

    @staticmethod
    def _sideways(first: Detector, image: np.ndarray) -> bool:
        """Whether ``first`` finds a face in ``image`` turned by 90° or 270° (see the class)."""
        for degrees, faces in search.turned(first.detect, image):
            if degrees not in SIDEWAYS:
                return False
            if faces:
                return True
        return False

    def __repr__(self) -> str:
        return f"FallbackDetector({self.name!r})"
