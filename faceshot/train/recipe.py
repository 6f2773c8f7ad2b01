"""How ``faceshot train`` chooses its recipe from the data, so that its defaults work.

:func:`profile` looks at the folders (classes, images per class, and a sample of the images:
their size, whether they are grey, whether they are ink on paper); :func:`choose` turns that
into a :class:`Recipe`: a :class:`~faceshot.train.trainer.TrainConfig`, the input size and
channels, and one line per choice saying why. Every choice can be overridden (``given``).

The figures behind the choices (BENCHMARKS.md, "Training"): on Omniglot's two small background
sets (292 characters, 20 drawings each) the prototypical loss with rotated classes, Koch's
distortions and 32 × (1 + 3) batches learnt fastest per CPU-minute of the recipes measured.
:func:`profile` reads 200 images and needs no torch; :func:`choose` builds a ``TrainConfig`` (the
train extra).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from faceshot.errors import ConfigError
from faceshot.io import load_image
from faceshot.train.folders import LabelledImages

__all__ = ["DataProfile", "Choice", "Recipe", "profile", "choose", "DEFAULT_MINUTES", "EPOCHS"]

DEFAULT_MINUTES = 26.0  # of training: with loading and the final test, the run ends within 30 minutes
EPOCHS = 80  # of the cosine schedule: about what 26 minutes gave one thread on 2 cores (69-83 epochs)
SAMPLE = 200  # images opened to see their size and colours (seeded; about a second)
INK = 0.9  # share of pixels near black or white above which images are ink on paper


@dataclass(frozen=True)
class DataProfile:
    """What the recipe is chosen from."""

    classes: int
    images: int
    per_class: float  # median images per class
    side: int  # median shorter side of the sampled images, pixels
    grey: bool  # every sampled image has R = G = B (or is stored grey)
    ink: float  # share of sampled pixels within 32 levels of black or white

    @property
    def glyphs(self) -> bool:
        """Grey two-tone images (handwriting, symbols): turning or distorting one makes another class."""
        return self.grey and self.ink >= INK


@dataclass(frozen=True)
class Choice:
    option: str
    value: Any
    reason: str

    def line(self) -> str:
        shown = "on" if self.value is True else "off" if self.value is False else "auto" if self.value is None else self.value
        return f"{self.option} {shown}: {self.reason}"


@dataclass(frozen=True)
class Recipe:
    """A training configuration with the input shape and the reason for every choice."""

    config: Any  # TrainConfig (imported lazily: this module needs no torch)
    size: int
    channels: int
    choices: tuple[Choice, ...]

    def lines(self) -> list[str]:
        return [choice.line() for choice in self.choices]


def profile(images: LabelledImages, *, sample: int = SAMPLE, seed: int = 0) -> DataProfile:
    """The :class:`DataProfile` of labelled images, from their counts and a seeded sample of files.

    Raises the :class:`~faceshot.errors.ImageError` of :func:`faceshot.io.load_image` for a sampled
    file that cannot be read (as training would).
    """
    counts = np.bincount(images.labels, minlength=len(images.classes))
    chosen = np.random.default_rng(seed).choice(len(images), size=min(sample, len(images)), replace=False)
    sides, grey, ink, pixels = [], True, 0, 0
    for i in sorted(chosen):
        # Read as training will read it (faceshot.io: EXIF, modes, depth), so a bad file fails the same way.
        rgb = load_image(images.paths[i]).astype(np.int16)
        sides.append(min(rgb.shape[:2]))
        grey = grey and bool((np.abs(rgb - rgb[:, :, :1]) <= 2).all())
        values = rgb.mean(axis=2)
        ink += int(((values < 32) | (values > 223)).sum())
        pixels += values.size
    return DataProfile(classes=len(images.classes), images=len(images), per_class=float(np.median(counts)),
                       side=int(np.median(sides)), grey=grey, ink=ink / max(pixels, 1))


def _ways(classes: int, holdout: float) -> int:
    # Each held-out side (validation, test) gets about holdout/2 of the classes; episodes use as many
    # ways as that allows, up to 20 (Lake's official runs): 5-way saturates near 100% on glyphs and
    # stops telling epochs apart, which stopped the old defaults early.
    ways = min(20, max(5, round(classes * holdout) // 2))
    return max(2, min(ways, (classes - 2) // 2))


def choose(data: DataProfile, *, backbone: str = "small-cnn", given: dict[str, Any] | None = None,
           load: float | None = None, cores: int | None = None) -> Recipe:
    """The recipe for ``data``; ``given`` (TrainConfig fields, ``size``, ``channels``) wins over a choice.

    ``load`` (the machine's 1-minute load average) and ``cores``, when given, choose the torch
    threads: one when other work already fills the cores (measured on 2 cores at load 10: a
    prototypical batch took 2.8-3.1 s with one thread, 3.0-6.6 s and 60% more CPU with two, which
    wait for each other), else torch's choice (every core). Raises :class:`ConfigError` for an
    unknown option in ``given``.
    """
    from faceshot.train.trainer import TrainConfig

    given = {k: v for k, v in (given or {}).items() if v is not None}
    known = {f.name for f in fields(TrainConfig)} | {"size", "channels"}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    choices: list[Choice] = []
    values: dict[str, Any] = {"backbone": backbone}

    def pick(option: str, value: Any, reason: str) -> None:
        if option in given:
            value, reason = given[option], "given"
        values[option] = value
        choices.append(Choice(option, value, reason))

    images = backbone != "face-adapter"
    few = data.per_class <= 50
    if images:
        pick("channels", 1 if data.grey else 3,
             "the sampled images are grey" if data.grey else "the sampled images are in colour")
        if backbone == "koch":
            pick("size", 56, "Koch et al.'s network takes 105 px; half of it, with kernels scaled alike, trains in minutes on a CPU")
        elif data.glyphs:
            pick("size", 28, f"two-tone glyphs ({data.ink:.0%} of pixels near black or white, {data.side} px): "
                 "28 px as Matching and Prototypical Networks on Omniglot; 4 poolings leave 1×1×64")
        else:
            side = max(16, min(64, data.side) // 16 * 16)
            pick("size", side, f"median side {data.side} px, kept up to 64 px (a multiple of 16) to stay fast on a CPU")
        pick("rotations", data.glyphs,
             "a glyph turned by 90°, 180°, 270° is another glyph: 4× the classes (Snell et al.)" if data.glyphs
             else "not glyphs: a turned photo is the same class (people, objects)")
        pick("affine", few, f"{data.per_class:g} images per class: Koch et al.'s small rotations, shears, scales "
             "and shifts make more" if few else f"{data.per_class:g} images per class: plain 2-px shifts suffice")
    if backbone == "koch":
        pick("loss", "siamese", "Koch et al.'s network is trained as a Siamese pair: weighted L1 head, binary cross-entropy")
    elif images:
        pick("loss", "prototypical", "trained from pixels: the prototypical loss optimises N-way K-shot directly "
             "(on Omniglot, the fastest learner per CPU-minute of the five losses)")
    else:
        pick("loss", "triplet", "adapting a pretrained embedder: triplet loss, semi-hard mining (the measured face-adapter recipe)")
    holdout = float(given.get("holdout", TrainConfig.holdout))
    pick("ways", _ways(data.classes, holdout),
         f"{data.classes} classes: {holdout:.0%} held out by identity, half to validate; episodes as wide as that allows, up to 20")
    pick("shots", 1, "one-shot: one enrolled example per class, the use faceshot is for")
    multiplier = (4 if values.get("rotations") else 1) * (2 if values.get("flips") else 1)
    training = max(2, round(data.classes * (1 - holdout))) * multiplier
    if values["loss"] == "prototypical":
        queries = int(max(1, min(3, data.per_class - values["shots"])))
        pick("classes_per_batch", min(32, training), f"{training} training classes: 32 ways per batch; on Omniglot "
             "32 × 4 reached 87.0% on the official runs in 3.2 CPU-minutes, 60 × 6 (Snell et al.) 81.5% in 7.1: "
             "more, smaller batches learn more per minute on a CPU")
        pick("per_class", values["shots"] + queries, f"{values['shots']} support + {queries} queries per class")
        pick("steps_per_epoch", 100, "validate every 100 batches")
    else:
        pick("classes_per_batch", min(32, training), "P×K batches for online mining")
        pick("per_class", 4, "4 images per class: positives for every anchor")
        pick("steps_per_epoch", 100, "validate every 100 batches")
    pick("learning_rate", 1e-3, "Adam at 1e-3")
    pick("schedule", "cosine", "the learning rate falls from 1e-3 to 0 along half a cosine over the epochs: "
         "on Omniglot this recipe's 3 seeds reached 90.25-91.25% with it; halving it when validation stalled "
         "stopped 2 of 3 early, below 90%")
    if values["schedule"] == "plateau":
        pick("lr_patience", 3, "halve the learning rate after 3 epochs without a better validation figure")
    pick("patience", 20, "stop after 20 epochs without a better validation figure: a run whose rate is still "
         "falling is rarely stopped")
    if values["schedule"] == "cosine" and images:
        pick("epochs", EPOCHS, f"the rate falls over {EPOCHS} epochs of {values['steps_per_epoch']} batches, not over "
             "minutes, so a faster machine trains the same run; one thread gets through about 80 in 26 minutes, "
             "and on a slower machine the time limit comes first and the rate follows the clock")
    else:
        pick("epochs", 1000, "no fixed number of epochs: the time budget and patience end the run")
    minutes = given.get("time_limit")
    pick("time_limit", DEFAULT_MINUTES * 60 if minutes is None else minutes,
         f"{DEFAULT_MINUTES:g} minutes of training: with loading and the final test, within 30 minutes on 2 cores")
    if load is not None and cores:
        busy = load >= cores
        pick("threads", 1 if busy else None,
             f"load average {load:.1f} on {cores} cores: one thread, as two would wait for each other" if busy
             else f"load average {load:.1f} on {cores} cores: torch's choice, every core")
    rest = {k: v for k, v in given.items() if k not in values}
    config = replace(TrainConfig(), **{k: v for k, v in values.items() if k not in ("size", "channels")}, **rest)
    return Recipe(config, int(values.get("size", 0)), int(values.get("channels", 0)), tuple(choices))
