"""Labelled folders turned into :class:`~faceshot.train.trainer.TrainingData` for a given backbone.

``small-cnn`` learns from pixels: each image is read and prepared (:func:`prepare_image`).
``face-adapter`` learns from a frozen embedder's vectors: each photo's face is found, aligned and
embedded once (on every core, :mod:`faceshot.bulk`); photos where no face is found are left out.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Sequence

import numpy as np

from faceshot.bulk import one_vector_per_file
from faceshot.embed import DEFAULT_EMBEDDER
from faceshot.train.data import load_images
from faceshot.train.folders import find_classes
from faceshot.train.trainer import TrainingData

__all__ = ["load_folders"]

log = logging.getLogger(__name__)


def load_folders(
    roots: Sequence[str | os.PathLike],
    *,
    backbone: str = "small-cnn",
    size: int = 28,
    channels: int = 1,
    base: str = DEFAULT_EMBEDDER,
    detector: str = "hog",
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainingData:
    """The images below ``roots`` (one folder per class, any depth) as inputs for ``backbone``."""
    images = find_classes(roots, min_images=2)
    if backbone != "face-adapter":
        return TrainingData(load_images(images, size=size, channels=channels), images.labels, images.classes)
    vectors = one_vector_per_file(images.paths, detector=detector, embedder=base, multiple="largest",
                                  workers=workers, progress=progress)
    keep = [i for i, path in enumerate(images.paths) if os.fspath(path) in vectors]
    if len(keep) < len(images):
        log.warning("%d of %d photos have no face found; left out", len(images) - len(keep), len(images))
    inputs = np.stack([vectors[os.fspath(images.paths[i])] for i in keep]).astype(np.float32)
    return TrainingData(inputs, images.labels[keep], images.classes)
