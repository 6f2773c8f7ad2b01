"""dlib's ResNet face embedder (128-D, 99.38% on LFW as published), run by dlib itself."""

from __future__ import annotations

import numpy as np

from faceshot import models
from faceshot.embed import Embedder, embedders, normalize

__all__ = ["DlibResnetEmbedder"]


@embedders.register("dlib-resnet")
class DlibResnetEmbedder(Embedder):
    name = "dlib-resnet"
    dim = 128
    aligner = "dlib-5pt"

    def embed(self, chips: np.ndarray) -> np.ndarray:
        if len(chips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = models.load("face_recognition_model_v1", "dlib_face_recognition_resnet_model_v1.dat")
        vectors = model.compute_face_descriptor([np.ascontiguousarray(chip) for chip in chips])
        return normalize(np.array(vectors, dtype=np.float32))
