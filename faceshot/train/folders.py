"""Labelled folders: every folder that directly holds images is one class (one identity).

A class is named by its path below the root, at any depth: ``Latin/character07`` in Omniglot's
``alphabet/character/`` layout is one class, ``Ada_Lovelace`` in a ``person/`` layout another. Several
roots may be given; their classes are kept apart by the root's position. This module does not need
torch: the few-shot evaluation reads folders with it too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from faceshot.errors import ConfigError
from faceshot.walk import by_leaf_folder

__all__ = ["LabelledImages", "find_classes", "IdentitySplit", "split_identities"]


@dataclass(frozen=True)
class LabelledImages:
    """Image files and the class of each: ``labels[i]`` indexes ``classes``."""

    paths: tuple[Path, ...]
    labels: np.ndarray  # (images,) int64
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, classes: Sequence[int]) -> "LabelledImages":
        """The images of the given classes, relabelled 0..len(classes)-1 in that order."""
        mapping = {old: new for new, old in enumerate(classes)}
        keep = [i for i, label in enumerate(self.labels) if int(label) in mapping]
        return LabelledImages(
            paths=tuple(self.paths[i] for i in keep),
            labels=np.array([mapping[int(self.labels[i])] for i in keep], dtype=np.int64),
            classes=tuple(self.classes[c] for c in classes),
        )


def find_classes(roots: Sequence[str | os.PathLike], *, min_images: int = 1) -> LabelledImages:
    """Every image below ``roots``, labelled by the folder that holds it; classes sorted by name.

    Folders are read by :mod:`faceshot.walk` (links followed, hidden and non-image files left out).
    Classes with fewer than ``min_images`` images are left out (a class needs two images to give
    a positive pair). Raises :class:`~faceshot.errors.ImageNotFoundError` when a root is missing
    or holds no image folder, :class:`ConfigError` when no class has ``min_images`` images.
    """
    paths: list[Path] = []
    labels: list[int] = []
    classes: list[str] = []
    for number, root in enumerate(roots):
        groups, _ = by_leaf_folder(root)  # the one folder walker: ROOT/…/class/image.png
        for name in sorted(groups):
            if len(groups[name]) < min_images:
                continue
            classes.append(name if len(roots) == 1 else f"{number}:{name}")
            paths.extend(groups[name])
            labels.extend([len(classes) - 1] * len(groups[name]))
    if not classes:
        raise ConfigError(
            f"no class with at least {min_images} images in {', '.join(map(str, roots))}; "
            "expected ROOT/class/image.png (one folder per person or character)"
        )
    return LabelledImages(tuple(paths), np.array(labels, dtype=np.int64), tuple(classes))


@dataclass(frozen=True)
class IdentitySplit:
    """Class indices for training, for validation (early stopping) and for the final test (the guard).

    No class is on two sides: a model is always measured on people (or characters) it never saw.
    """

    train: tuple[int, ...]
    validation: tuple[int, ...]
    test: tuple[int, ...]


def split_identities(classes: int, *, holdout: float = 0.2, minimum: int = 2, seed: int = 0) -> IdentitySplit:
    """Hold out ``holdout`` of the classes, half for validation and half for the test.

    ``minimum``: the fewest classes each held-out side must have (the number of ways of the
    episodes that will measure it). Raises :class:`ConfigError` when there are too few classes.
    """
    if not 0 < holdout < 1:
        raise ConfigError(f"holdout must be between 0 and 1, got {holdout}")
    held = max(2 * minimum, round(classes * holdout))
    if classes - held < 2:
        raise ConfigError(
            f"{classes} classes are too few: {held} are held out to measure {minimum}-way episodes "
            "on people the model never saw, and training needs at least 2 more"
        )
    order = np.random.default_rng(seed).permutation(classes)
    validation = held // 2
    return IdentitySplit(
        train=tuple(sorted(int(c) for c in order[held:])),
        validation=tuple(sorted(int(c) for c in order[:validation])),
        test=tuple(sorted(int(c) for c in order[validation:held])),
    )
