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

__all__ = ["load_images", "add_rotations", "add_flips", "shift", "affine", "PKSampler", "classes_of"]

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


def add_flips(inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each class again mirrored left to right, as a new class (twice the classes).

    Like a turned character, a mirrored one is another character (a mirrored face is the same
    person: for faces this would teach the wrong thing).
    """
    classes = int(labels.max()) + 1
    return np.concatenate([inputs, inputs[:, :, ::-1]]), np.concatenate([labels, labels + classes])


def affine(batch: np.ndarray, rng: np.random.Generator, *, rotation: float = 10.0, shear: float = 0.3,
           scale: tuple[float, float] = (0.8, 1.2), pixels: float = 2.0, chance: float = 0.5) -> np.ndarray:
    """Koch et al.'s (2015) distortions: each of rotation (±``rotation`` degrees), shear (±``shear``),
    scale (``scale`` per axis) and translation (±``pixels``) applied with probability ``chance``.

    ``batch``: ``uint8 (N, H, W, C)``; the result has the same shape and dtype. The border pixel is
    repeated where the image moved away (Omniglot's white paper). The draws come from ``rng`` only,
    so a seeded run repeats.
    """
    import torch
    import torch.nn.functional as F

    n, h, w = batch.shape[:3]
    if n == 0:
        return batch
    on = rng.random((n, 4)) < chance
    theta = np.deg2rad(rng.uniform(-rotation, rotation, n)) * on[:, 0]
    sx, sy = (rng.uniform(-shear, shear, (2, n)) * on[:, 1])
    zx, zy = np.where(on[:, 2], rng.uniform(*scale, (2, n)), 1.0)
    tx, ty = rng.uniform(-pixels, pixels, (2, n)) * on[:, 3]
    cos, sin = np.cos(theta), np.sin(theta)
    # The sampling grid maps output to input coordinates in [-1, 1]: R · Sh · Z, then a shift.
    rotate = np.stack([np.stack([cos, -sin], 1), np.stack([sin, cos], 1)], 1)
    shearing = np.stack([np.stack([np.ones(n), sx], 1), np.stack([sy, np.ones(n)], 1)], 1)
    zoom = np.stack([np.stack([1 / zx, np.zeros(n)], 1), np.stack([np.zeros(n), 1 / zy], 1)], 1)
    linear = rotate @ shearing @ zoom
    offset = np.stack([2 * tx / w, 2 * ty / h], 1)[:, :, None]
    matrices = torch.from_numpy(np.concatenate([linear, offset], 2).astype(np.float32))
    images = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float()
    grid = F.affine_grid(matrices, list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return moved.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


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
