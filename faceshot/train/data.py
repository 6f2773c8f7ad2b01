"""Training inputs in memory, their augmentation, and the P×K batch sampler used for mining.

The inputs are a numpy array indexed by sample: ``uint8 (N, size, size, channels)`` images for a
network trained from scratch, or ``float32 (N, dim)`` vectors of a pretrained embedder for an
adapter. Omniglot's 5,840 training images at 28×28 take 4.6 MB, so everything stays in memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from faceshot.embed.onnx_model import prepare_image
from faceshot.errors import ConfigError
from faceshot.train.folders import LabelledImages

__all__ = ["load_images", "add_rotations", "shift", "PKSampler", "classes_of"]

log = logging.getLogger(__name__)


def load_images(images: LabelledImages, *, size: int, channels: int) -> np.ndarray:
    """Every image as ``uint8 (N, size, size, channels)``, prepared as the exported model will see it."""
    return np.stack([prepare_image(path, size, channels) for path in images.paths])


def add_rotations(inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each class again turned by 90°, 180° and 270°, as three new classes (four times the classes).

    Prototypical Networks trained Omniglot this way: a turned character is another character, and
    more classes teach the metric more than more images of the same ones.
    """
    classes = int(labels.max()) + 1
    turned = [np.rot90(inputs, k, axes=(1, 2)) for k in range(4)]
    return np.concatenate(turned), np.concatenate([labels + k * classes for k in range(4)])


def shift(batch: np.ndarray, rng: np.random.Generator, pixels: int = 2) -> np.ndarray:
    """Each image moved by up to ``pixels`` in x and y, the border repeated (a cheap augmentation)."""
    if pixels == 0:
        return batch
    n, h, w = batch.shape[:3]
    padded = np.pad(batch, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)), mode="edge")
    dy, dx = rng.integers(0, 2 * pixels + 1, size=(2, n))
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


@dataclass
class PKSampler:
    """Batches of P classes × K samples each, the shape online mining needs.

    Each batch draws ``classes_per_batch`` classes at random (without repeats within the batch) and
    ``per_class`` samples of each, without repeats when a class has enough, with repeats otherwise.
    ``labels`` are the labels of the training samples only: the sampler never sees held-out classes.
    The order depends on ``seed`` alone; :meth:`state` and :meth:`restore` let training resume.
    """

    labels: np.ndarray
    classes_per_batch: int
    per_class: int
    seed: int = 0

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels)
        self._members = [np.flatnonzero(self.labels == c) for c in np.unique(self.labels)]
        self._members = [m for m in self._members if len(m)]
        if len(self._members) < 2:
            raise ConfigError("training needs at least two classes")
        if self.per_class < 1 or self.classes_per_batch < 2:
            raise ConfigError(f"a batch needs at least 2 classes and 1 sample each, got P={self.classes_per_batch}, K={self.per_class}")
        if self.classes_per_batch > len(self._members):
            log.info("only %d training classes: P lowered from %d", len(self._members), self.classes_per_batch)
            self.classes_per_batch = len(self._members)
        self._rng = np.random.default_rng(self.seed)

    @property
    def batch_size(self) -> int:
        return self.classes_per_batch * self.per_class

    def batch(self) -> np.ndarray:
        """The sample indices of the next batch, class by class."""
        chosen = self._rng.choice(len(self._members), size=self.classes_per_batch, replace=False)
        parts = []
        for c in chosen:
            members = self._members[c]
            parts.append(self._rng.choice(members, size=self.per_class, replace=len(members) < self.per_class))
        return np.concatenate(parts)

    def batches(self, count: int) -> Iterator[np.ndarray]:
        for _ in range(count):
            yield self.batch()

    def state(self) -> dict:
        return self._rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self._rng.bit_generator.state = state


def classes_of(labels: np.ndarray, chosen: Sequence[int]) -> np.ndarray:
    """The indices of the samples whose label is one of ``chosen``."""
    return np.flatnonzero(np.isin(labels, np.asarray(chosen)))
