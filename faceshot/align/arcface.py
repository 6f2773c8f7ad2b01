"""ArcFace's alignment: a similarity transform (rotation, scale, shift) taking the five
``eyes-nose-mouth`` points to a fixed template, then a 112 × 112 crop.

The template is the one InsightFace's ArcFace models were trained with (``arcface_dst`` in
``insightface/utils/face_align.py``): the face chips most public ONNX embedders (ArcFace,
MobileFaceNet, …) expect. The transform is the least-squares similarity of Umeyama (1991).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from faceshot.align import Aligner, aligners
from faceshot.errors import ConfigError
from faceshot.results import EYES_NOSE_MOUTH, Face

__all__ = ["ArcfaceAligner", "TEMPLATE_112", "similarity"]

#: Where the five points land in a 112 × 112 chip (x, y pixels): eye centres, nose tip, mouth corners.
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The ``(2, 3)`` similarity transform taking ``source`` points ``(N, 2)`` closest to ``target``
    (least squares, Umeyama 1991): ``target ≈ A @ [x, y, 1]``."""
    n = len(source)
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    s, t = source - mean_s, target - mean_t
    covariance = t.T @ s / n
    u, d, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    variance = (s**2).sum() / n
    scale = np.trace(np.diag(d) @ sign) / variance if variance > 0 else 1.0
    shift = mean_t - scale * rotation @ mean_s
    return np.hstack([scale * rotation, shift[:, None]])


@aligners.register("arcface-112")
class ArcfaceAligner(Aligner):
    """Chips of 112 × 112 with the five ``eyes-nose-mouth`` points on ArcFace's template. Needs a
    detector that gives that scheme (``mtcnn:landmarks=eyes-nose-mouth``, ``yunet:…``)."""

    name = "arcface-112"
    scheme = EYES_NOSE_MOUTH
    size = 112

    def align(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        chips = np.empty((len(faces), self.size, self.size, 3), dtype=np.uint8)
        picture = Image.fromarray(image)
        for i, face in enumerate(faces):
            if face.scheme != self.scheme:
                raise ConfigError(f"{self.name} aligns from {self.scheme} landmarks, this face has {face.scheme}")
            forward = np.vstack([similarity(np.asarray(face.landmarks, np.float64), TEMPLATE_112), [0, 0, 1]])
            inverse = np.linalg.inv(forward)[:2].ravel()  # PIL maps each chip pixel back to the photo
            chips[i] = np.asarray(picture.transform((self.size, self.size), Image.AFFINE, tuple(inverse), Image.BILINEAR))
        return chips
