"""The training loop: P×K batches, a metric loss, validation by N-way K-shot episodes on held-out classes.

Classes (people, characters) are split three ways before anything is learnt: most train; one
held-out part (validation) chooses the epoch to keep and stops training when it no longer improves;
the other (test) measures the kept model *and the baseline* on the same episodes at the end. The
baseline is the network as it was before training: for ``face-adapter`` that is exactly the
pretrained embedder (the adapter starts as the identity), for ``small-cnn`` a random network.
:attr:`TrainResult.improved` says whether training beat it; ``faceshot train`` refuses to write a
model that did not (a head fine-tuned on a few people can be worse than no training at all).

Runs repeat: the same data, configuration, seed and thread count give the same weights.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from faceshot.errors import ConfigError, ModelError
from faceshot.evaluate.fewshot import FewShotResult, evaluate_episodes, episodes
from faceshot.train.backbones import Backbone, create_backbone
from faceshot.train.data import PKSampler, add_flips, add_rotations, affine, classes_of, shift
from faceshot.train.folders import IdentitySplit, split_identities
from faceshot.train.losses import create_loss

__all__ = ["TrainConfig", "TrainingData", "EpochLog", "TrainResult", "train", "embed_inputs"]

log = logging.getLogger(__name__)

SCHEDULES = ("plateau", "cosine")  # TrainConfig.schedule


@dataclass(frozen=True)
class TrainConfig:
    """How to train. The defaults train Omniglot-like data (28×28 grayscale) in minutes on a CPU.

    ``classes_per_batch`` × ``per_class``: the P×K batch. ``steps_per_epoch``: batches between two
    validations. ``patience``: epochs without a better validation figure before stopping.
    ``ways``/``shots``/``episodes``: the episodes of validation and of the final comparison.
    ``holdout``: share of the classes kept out of training (half validation, half test).
    ``rotations``: add each class turned by 90°, 180°, 270° as new classes (images only).
    ``flips``: add each class mirrored as a new class (images only; glyphs, not faces).
    ``shift``: random translation of training images, in pixels. ``affine``: Koch et al.'s random
    rotation, shear, scale and translation instead (:func:`~faceshot.train.data.affine`).
    ``schedule``: the learning rate over the run. ``"plateau"``: halve it after ``lr_patience``
    epochs without a better validation figure (``lr_patience=None``: a constant rate).
    ``"cosine"``: from ``learning_rate`` down to 0 along half a cosine (Loshchilov & Hutter's
    SGDR without restarts) over the run's budget, whichever of ``epochs``, ``time_limit`` and
    ``cpu_limit`` is nearer its end, set before each epoch; a resumed run starts its time budgets
    afresh, so its rate rises again (a warm restart). ``time_limit``: seconds; no epoch is begun that, lasting as long as the last one, would end after it.
    ``cpu_limit``: the same in CPU seconds of this process (all threads), so that runs compared on a
    shared machine get equal work whatever the load (the benchmarks' equal budgets).
    ``threads``: torch threads (default: torch's choice). With ``loss="prototypical"`` the first
    ``shots`` of each class's ``per_class`` samples are the support, the rest the queries.
    :mod:`faceshot.train.recipe` chooses these from the data for ``faceshot train``.
    """

    loss: str = "triplet"
    mining: str = "semihard"
    backbone: str = "small-cnn"
    epochs: int = 40
    steps_per_epoch: int = 100
    classes_per_batch: int = 32
    per_class: int = 4
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    ways: int = 5
    shots: int = 1
    episodes: int = 300
    patience: int = 8
    holdout: float = 0.2
    rotations: bool = False
    flips: bool = False
    shift: int = 2
    affine: bool = False
    lr_patience: int | None = None
    schedule: str = "plateau"
    time_limit: float | None = None
    cpu_limit: float | None = None
    threads: int | None = None


@dataclass(frozen=True)
class TrainingData:
    """Samples and their class: ``uint8 (N, size, size, channels)`` images or ``float32 (N, dim)`` vectors."""

    inputs: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.labels):
            raise ConfigError(f"{len(self.inputs)} inputs but {len(self.labels)} labels")


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    loss: float
    validation: float  # N-way K-shot accuracy on the validation classes
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """The kept network (best validation epoch) and the figures that judge it."""

    model: Backbone
    config: TrainConfig
    split: IdentitySplit
    baseline: FewShotResult  # the untrained network (adapter: the pretrained embedder) on the test classes
    trained: FewShotResult  # the kept network on the same episodes
    history: tuple[EpochLog, ...]
    best_epoch: int
    seconds: float
    stopped: str  # why training ended: "epochs", "patience", "time limit"
    classes: tuple[str, ...] = field(repr=False, default=())

    @property
    def improved(self) -> bool:
        """Whether the trained network is at least as good as the baseline on the test classes."""
        return self.trained.accuracy >= self.baseline.accuracy

    def summary(self) -> dict[str, Any]:
        return {
            "loss": self.config.loss,
            "backbone": self.config.backbone,
            "baseline": self.baseline.to_dict(),
            "trained": self.trained.to_dict(),
            "improved": self.improved,
            "best_epoch": self.best_epoch,
            "epochs_run": len(self.history),
            "stopped": self.stopped,
            "seconds": round(self.seconds, 1),
            "classes": {"train": len(self.split.train), "validation": len(self.split.validation), "test": len(self.split.test)},
        }


def embed_inputs(model: Backbone, inputs: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The model's unit vectors of ``inputs``, in evaluation mode (batch norm frozen), as numpy."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = [model(torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch_size]))).numpy()
               for i in range(0, len(inputs), batch_size)]
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.dim), dtype=np.float32)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _fewshot(model: Backbone, inputs: np.ndarray, drawn: list, config: TrainConfig, ways: int) -> FewShotResult:
    return evaluate_episodes(embed_inputs(model, inputs), drawn, ways=ways, shots=config.shots)


def train(
    data: TrainingData,
    config: TrainConfig = TrainConfig(),
    *,
    backbone_options: dict[str, Any] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    split: IdentitySplit | None = None,
    progress: Callable[[int, int, EpochLog | None], None] | None = None,
) -> TrainResult:
    """Train ``config.backbone`` on ``data`` and compare it with the untrained network on held-out classes.

    ``backbone_options``: keyword arguments of the network (``size``/``channels`` for ``small-cnn``,
    ``dim_in``/``base`` for ``face-adapter``). ``checkpoint``: a file rewritten after every epoch;
    with ``resume`` an existing one is continued (same data and configuration, more epochs allowed).
    ``split``: which classes train, validate and test (default: :func:`split_identities` with the
    configuration's holdout and seed). ``progress(step, total_steps, epoch_log_or_None)`` is called
    after every batch.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    _seed(config.seed)
    start, cpu_start, cpu_last = time.monotonic(), time.process_time(), 0.0
    if split is None:
        split = split_identities(len(data.classes), holdout=config.holdout, minimum=max(2, config.ways), seed=config.seed)
    elif set(split.train) & set(split.validation + split.test) or set(split.validation) & set(split.test):
        raise ConfigError("a class is on two sides of the split: the figures would measure memory, not one-shot")
    ways = config.ways

    train_at = classes_of(data.labels, split.train)
    inputs, labels = data.inputs[train_at], np.searchsorted(np.array(split.train), data.labels[train_at])
    images = inputs.dtype == np.uint8
    if config.rotations and images:
        inputs, labels = add_rotations(inputs, labels)
    if config.flips and images:
        inputs, labels = add_flips(inputs, labels)
    if config.loss == "prototypical" and config.per_class <= config.shots:
        raise ConfigError(f"prototypical batches need more than shots={config.shots} samples per class "
                          f"(the rest are its queries), got per_class={config.per_class}")
    held = {}
    for side, chosen, seed in (("validation", split.validation, config.seed), ("test", split.test, config.seed + 1)):
        at = classes_of(data.labels, chosen)
        held[side] = (data.inputs[at], episodes(data.labels[at], ways=ways, shots=config.shots, count=config.episodes, seed=seed))

    model = create_backbone(config.backbone, **(backbone_options or {}))
    initial = copy.deepcopy(model.state_dict())
    loss_fn = create_loss(config.loss, dim=model.dim, classes=int(labels.max()) + 1, mining=config.mining,
                          seed=config.seed, shots=config.shots)
    parameters = list(model.parameters()) + list(loss_fn.parameters())
    optimizer = torch.optim.Adam(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    # Halving the rate when validation stalls (Snell et al. halve it every 2,000 episodes; a plateau
    # rule needs no guess of the run's length, which a time limit makes unknown).
    if config.schedule not in SCHEDULES:
        raise ConfigError(f"unknown learning-rate schedule {config.schedule!r}; known: {', '.join(SCHEDULES)}")
    scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=config.lr_patience)
                 if config.schedule == "plateau" and config.lr_patience is not None else None)
    sampler = PKSampler(labels, config.classes_per_batch, config.per_class, seed=config.seed)
    augment = np.random.default_rng(config.seed + 2)

    history: list[EpochLog] = []
    best, best_state, bad = -1.0, copy.deepcopy(initial), 0
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        state = _load(checkpoint, config, data)
        model.load_state_dict(state["model"])
        loss_fn.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        sampler.restore(state["sampler"])
        augment.bit_generator.state = state["augment"]
        torch.set_rng_state(state["torch_rng"])
        history = [EpochLog(**h) for h in state["history"]]
        best, best_state, bad = state["best"], state["best_state"], state["bad"]
        log.info("resuming %s after epoch %d", checkpoint, len(history))

    stopped = "epochs"
    total = config.epochs * config.steps_per_epoch
    for epoch in range(len(history) + 1, config.epochs + 1):
        if bad >= config.patience:
            stopped = "patience"
            break
        # The next epoch is expected to last as long as the last one: stop if it would end past the limit.
        last = history[-1].seconds if history else 0.0
        if config.time_limit is not None and time.monotonic() - start + last > config.time_limit:
            stopped = "time limit"
            break
        if config.cpu_limit is not None and time.process_time() - cpu_start + cpu_last > config.cpu_limit:
            stopped = "CPU limit"
            break
        if config.schedule == "cosine":
            used = _budget_used(config, epoch - 1, time.monotonic() - start, time.process_time() - cpu_start)
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate * 0.5 * (1 + math.cos(math.pi * used))
        began, cpu_began, losses = time.monotonic(), time.process_time(), []
        model.train()
        for step in range(config.steps_per_epoch):
            index = sampler.batch()
            batch = inputs[index]
            if images:
                batch = affine(batch, augment) if config.affine else shift(batch, augment, config.shift)
            embeddings = model(torch.from_numpy(np.ascontiguousarray(batch)))
            loss = loss_fn(embeddings, torch.from_numpy(labels[index]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress((epoch - 1) * config.steps_per_epoch + step + 1, total, None)
        validation = _fewshot(model, *held["validation"], config, ways).accuracy
        entry = EpochLog(epoch, float(np.mean(losses)), validation, time.monotonic() - began)
        cpu_last = time.process_time() - cpu_began
        history.append(entry)
        if validation > best:
            best, best_state, bad = validation, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
        if scheduler is not None:
            scheduler.step(validation)
        log.info("epoch %d: loss %.4f, validation %d-way %d-shot %.2f%%, learning rate %.2g", epoch, entry.loss, ways,
                 config.shots, 100 * validation, optimizer.param_groups[0]["lr"])
        if progress is not None:
            progress(epoch * config.steps_per_epoch, total, entry)
        if checkpoint is not None:
            _save(checkpoint, config, data, model, loss_fn, optimizer, scheduler, sampler, augment, history, best, best_state, bad)

    model.load_state_dict(best_state)
    model.eval()
    trained = _fewshot(model, *held["test"], config, ways)
    untrained = create_backbone(config.backbone, **(backbone_options or {}))
    untrained.load_state_dict(initial)
    baseline = _fewshot(untrained, *held["test"], config, ways)
    best_epoch = max(history, key=lambda h: h.validation).epoch if history else 0
    return TrainResult(model, config, split, baseline, trained, tuple(history), best_epoch,
                       time.monotonic() - start, stopped, data.classes)


def _budget_used(config: TrainConfig, epochs_done: int, seconds: float, cpu_seconds: float) -> float:
    """The share of the run's budget spent, 0 to 1: the largest of epochs, wall and CPU time."""
    shares = [epochs_done / max(config.epochs, 1)]
    if config.time_limit:
        shares.append(seconds / config.time_limit)
    if config.cpu_limit:
        shares.append(cpu_seconds / config.cpu_limit)
    return min(1.0, max(shares))


# --- checkpoints ---------------------------------------------------------------------------------


def _fingerprint(config: TrainConfig, data: TrainingData) -> dict[str, Any]:
    # What must not change between a run and its resumption (the number of epochs may).
    settings = asdict(replace(config, epochs=0, time_limit=None, cpu_limit=None, threads=None, patience=0))
    return {"config": settings, "samples": len(data.labels), "classes": list(data.classes)}


def _save(path: str | Path, config: TrainConfig, data: TrainingData, model: Backbone, loss_fn: torch.nn.Module,
          optimizer: torch.optim.Optimizer, scheduler: Any, sampler: PKSampler, augment: np.random.Generator,
          history: list[EpochLog], best: float, best_state: dict, bad: int) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "fingerprint": _fingerprint(config, data),
        "model": model.state_dict(), "loss": loss_fn.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "sampler": sampler.state(), "augment": augment.bit_generator.state, "torch_rng": torch.get_rng_state(),
        "history": [asdict(h) for h in history], "best": best, "best_state": best_state, "bad": bad,
    }
    temp = path.with_name(f".{path.name}.tmp")
    torch.save(state, temp)
    temp.replace(path)  # a crash mid-write leaves the previous checkpoint whole


def _load(path: str | Path, config: TrainConfig, data: TrainingData) -> dict[str, Any]:
    try:
        state = torch.load(path, weights_only=True)
    except Exception as exc:  # pickle and zip errors of many kinds
        raise ModelError(f"cannot read checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("fingerprint") != _fingerprint(config, data):
        raise ModelError(f"checkpoint {path} was made with other data or settings; remove it or train without --resume")
    return state
