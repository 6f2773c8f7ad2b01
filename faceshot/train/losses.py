"""Metric-learning losses behind one small interface: ``loss(embeddings, labels) -> scalar``.

Where pytorch-metric-learning has the loss, it is used (its losses and miners are well tested);
this module picks their settings and pairs each loss with its miner:

- ``contrastive``: pulls pairs of one class together and pushes pairs of two classes beyond a
  margin (Hadsell et al. 2006), over every pair in the batch.
- ``siamese``: Koch et al.'s head, written here: ``sigmoid(w·|e1 − e2| + b)`` is the probability that
  two images show the same class, trained with binary cross-entropy on the batch's positive pairs
  and as many negative pairs. Only the embedding is exported; faceshot compares with cosine.
- ``triplet``: FaceNet's triplet loss (margin 0.2) on triplets mined online in each batch:
  ``semihard`` (FaceNet: negatives farther than the positive but within the margin), ``batch-hard``
  (Hermans et al.: each anchor's farthest positive and nearest negative), or ``all``.
- ``arcface``: an additive angular margin on a classifier over the training classes (Deng et al.
  2019), the modern alternative; its class weights are trained with the network and then dropped.
- ``prototypical``: Prototypical Networks (Snell et al. 2017), written here (pytorch-metric-learning
  has no episodic loss): each class of the batch is an episode's way, its first ``shots`` samples
  the support, the rest queries; a query's logits are minus the scaled squared distances to the
  prototypes (means of the embedded supports), trained with cross-entropy. It optimises exactly
  what N-way K-shot evaluation measures.
"""

from __future__ import annotations

from typing import Callable

import math

import torch
import torch.nn.functional as F
from torch import nn

from faceshot.errors import ConfigError

__all__ = ["MetricLoss", "LOSSES", "MINING", "create_loss", "SiameseLoss", "PrototypicalLoss"]

LOSSES = ("triplet", "contrastive", "siamese", "arcface", "prototypical")
MINING = ("semihard", "batch-hard", "all")
TRIPLET_MARGIN = 0.2


class MetricLoss(nn.Module):
    """``forward(embeddings, labels)``: the loss of one batch of unit vectors. May hold parameters."""

    name: str

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class _Library(MetricLoss):
    """A pytorch-metric-learning loss, with the miner that chooses its pairs or triplets."""

    def __init__(self, name: str, loss: nn.Module, miner: Callable | None = None) -> None:
        super().__init__()
        self.name, self.loss, self.miner = name, loss, miner

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        mined = self.miner(embeddings, labels) if self.miner is not None else None
        return self.loss(embeddings, labels, mined)


class SiameseLoss(MetricLoss):
    """Binary cross-entropy of ``sigmoid(w·|e1 − e2| + b)`` on the batch's pairs (Koch et al. 2015).

    Every positive pair of the batch is used, with as many negative pairs drawn at random (by a
    generator seeded from the training seed, so runs repeat); balanced, as Koch's were.
    """

    name = "siamese"

    def __init__(self, dim: int, seed: int = 0) -> None:
        super().__init__()
        self.head = nn.Linear(dim, 1)
        self.generator = torch.Generator().manual_seed(seed)

    def get_extra_state(self) -> torch.Tensor:
        # The negative pairs' generator travels in checkpoints, so that a resumed run draws the same pairs.
        return self.generator.get_state()

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def probability(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The head's probability that ``a[i]`` and ``b[i]`` show the same class."""
        return torch.sigmoid(self.head((a - b).abs()).squeeze(1))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        same = labels[:, None] == labels[None, :]
        upper = torch.triu(torch.ones_like(same), diagonal=1)
        positives = (same & upper).nonzero()
        negatives = (~same & upper).nonzero()
        if len(negatives) > len(positives) > 0:
            negatives = negatives[torch.randperm(len(negatives), generator=self.generator)[: len(positives)]]
        pairs = torch.cat([positives, negatives])
        targets = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))])
        logits = self.head((embeddings[pairs[:, 0]] - embeddings[pairs[:, 1]]).abs()).squeeze(1)
        return F.binary_cross_entropy_with_logits(logits, targets)


class PrototypicalLoss(MetricLoss):
    """Cross-entropy of each query against the batch's class prototypes (Snell et al. 2017).

    In a batch of ``(N,)`` labels, the first ``shots`` samples of each class (in batch order) are its
    support and its prototype is their mean; every other sample is a query whose logit for class
    ``c`` is ``-scale · ‖query − prototype_c‖²``. Embeddings are unit vectors (squared distances in
    [0, 4]), so the softmax needs a scale: it is learnt, starting at 10 (a logit span of 40, enough to
    be confident, small enough to keep a gradient at the start), as in cosine-classifier few-shot
    work. A class with no query still serves as a distractor. Raises :class:`ConfigError` when the
    batch has no query (every class has at most ``shots`` samples).
    """

    name = "prototypical"

    def __init__(self, shots: int = 1, scale: float = 10.0) -> None:
        super().__init__()
        if shots < 1:
            raise ConfigError(f"prototypical loss needs shots >= 1, got {shots}")
        self.shots = shots
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        classes, inverse = torch.unique(labels, return_inverse=True)
        onehot = F.one_hot(inverse, len(classes)).to(embeddings.dtype)  # (N, C)
        rank = (onehot.cumsum(0) * onehot).sum(1) - 1  # each sample's place among its class's samples
        support = rank < self.shots
        query = ~support
        if not bool(query.any()):
            raise ConfigError(f"a prototypical batch needs more than {self.shots} samples of some class")
        members = onehot[support]
        prototypes = members.T @ embeddings[support] / members.sum(0).clamp(min=1)[:, None]
        distances = torch.cdist(embeddings[query], prototypes).pow(2)
        return F.cross_entropy(-self.log_scale.exp() * distances, inverse[query])


def create_loss(name: str, *, dim: int, classes: int, mining: str = "semihard", seed: int = 0, shots: int = 1) -> MetricLoss:
    """The loss ``name`` (one of :data:`LOSSES`) for ``dim``-D embeddings of ``classes`` training classes.

    ``mining`` applies to ``triplet`` (one of :data:`MINING`); ``shots`` (support samples per class
    of each batch) to ``prototypical``.
    """
    from pytorch_metric_learning import losses, miners

    if name == "contrastive":
        # Unit vectors lie within distance 2 of each other; pairs of two classes are pushed beyond 1.
        return _Library(name, losses.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0))
    if name == "triplet":
        if mining not in MINING:
            raise ConfigError(f"unknown mining {mining!r}; choose one of: {', '.join(MINING)}")
        miner = {
            "semihard": lambda: miners.TripletMarginMiner(margin=TRIPLET_MARGIN, type_of_triplets="semihard"),
            "batch-hard": miners.BatchHardMiner,
            "all": lambda: None,
        }[mining]()
        return _Library(name, losses.TripletMarginLoss(margin=TRIPLET_MARGIN), miner)
    if name == "siamese":
        return SiameseLoss(dim, seed)
    if name == "arcface":
        # Scale 30 rather than the 64 of a 10,000-class face set: with a few hundred classes, 64
        # saturates the softmax at once and the margin teaches nothing.
        return _Library(name, losses.ArcFaceLoss(num_classes=classes, embedding_size=dim, margin=28.6, scale=30))
    if name == "prototypical":
        return PrototypicalLoss(shots)
    raise ConfigError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
