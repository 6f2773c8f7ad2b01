"""dlib's face-chip alignment from the 5 landmarks: rotate the eyes level, scale, crop to 150 × 150.

This is the cut dlib's ResNet embedder was trained on (``dlib.get_face_chip``, padding 0.25).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from faceshot import models
from faceshot.align import Aligner, aligners
from faceshot.results import DLIB_5, Face

__all__ = ["DlibChipAligner"]


@aligners.register("dlib-5pt")
class DlibChipAligner(Aligner):
    name = "dlib-5pt"
    scheme = DLIB_5

    def __init__(self, *, size: int = 150, padding: float = 0.25) -> None:
        self.size = size
        self.padding = padding

    def align(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        dlib = models.dlib()
        chips = np.empty((len(faces), self.size, self.size, 3), dtype=np.uint8)
        for i, face in enumerate(faces):
            box = face.box
            rect = dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1)
            points = dlib.points([dlib.point(round(x), round(y)) for x, y in face.landmarks])
            shape = dlib.full_object_detection(rect, points)
            chips[i] = dlib.get_face_chip(image, shape, size=self.size, padding=self.padding)
        return chips
