"""Losses and miners on tiny batches whose answers are worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from faceshot.errors import ConfigError  # noqa: E402
from faceshot.train.losses import LOSSES, create_loss  # noqa: E402


def unit(*degrees: float) -> "torch.Tensor":
    angles = torch.tensor(degrees) * math.pi / 180
    return torch.stack([angles.cos(), angles.sin()], dim=1)


def chord(degrees: float) -> float:
    """The distance between two unit vectors ``degrees`` apart."""
    return 2 * math.sin(math.radians(degrees) / 2)


# Class 0 at 0° and 20°, class 1 at 30° and 90°: distances 0-1 chord(20), 0-2 chord(30), 0-3 chord(90),
# 1-2 chord(10), 1-3 chord(70), 2-3 chord(60). Margin 0.2.
BATCH, LABELS = unit(0, 20, 30, 90), torch.tensor([0, 0, 1, 1])


def test_contrastive_by_hand():
    # Positive pair (0,1) at distance √2 costs √2 in both orders; negative pairs cost max(0, 1 − d):
    # (0,2) at distance 0 costs 1, (1,2) at √2 costs 0. Each part is averaged over its non-zero terms.
    loss = create_loss("contrastive", dim=2, classes=2)
    assert loss(torch.tensor([[1.0, 0], [0, 1], [1, 0]]), torch.tensor([0, 0, 1])).item() == pytest.approx(math.sqrt(2) + 1, abs=1e-5)


def test_triplet_batch_hard_by_hand():
    # Each anchor with its farthest positive and nearest negative:
    # 0: d(0,1) − d(0,2) + 0.2;  1: d(1,0) − d(1,2) + 0.2;  2: d(2,3) − d(2,1) + 0.2;  3: d(3,2) − d(3,1) + 0.2.
    terms = [chord(20) - chord(30), chord(20) - chord(10), chord(60) - chord(10), chord(60) - chord(70)]
    expected = sum(t + 0.2 for t in terms) / 4  # all four are positive
    loss = create_loss("triplet", dim=2, classes=2, mining="batch-hard")
    assert loss(BATCH, LABELS).item() == pytest.approx(expected, abs=1e-5)


def test_triplet_semihard_keeps_only_negatives_within_the_margin():
    # Semi-hard (FaceNet): d(a,p) < d(a,n) < d(a,p) + 0.2. Only (0,1,2): 0.347 < 0.518 < 0.547, and
    # (3,2,1): 1.0 < 1.147 < 1.2, qualify; (1,0,2) is hard (0.174 < 0.347), (0,1,3) too easy.
    expected = ((chord(20) - chord(30) + 0.2) + (chord(60) - chord(70) + 0.2)) / 2
    loss = create_loss("triplet", dim=2, classes=2, mining="semihard")
    assert loss(BATCH, LABELS).item() == pytest.approx(expected, abs=1e-5)


def test_siamese_head_by_hand():
    # Head w = (1, 1), b = −1. The positive pair (0,1) has |e0 − e1| = 0: logit −1, BCE(target 1) = ln(1 + e).
    # Either negative pair, (0,2) or (1,2), has |diff| = (1, 1): logit 1, BCE(target 0) = ln(1 + e).
    loss = create_loss("siamese", dim=2, classes=2)
    loss.head.weight.data = torch.tensor([[1.0, 1.0]])
    loss.head.bias.data = torch.tensor([-1.0])
    assert loss(torch.tensor([[1.0, 0], [1, 0], [0, 1]]), torch.tensor([0, 0, 1])).item() == pytest.approx(math.log(1 + math.e), abs=1e-5)
    assert loss.probability(torch.tensor([[1.0, 0]]), torch.tensor([[1.0, 0]])).item() == pytest.approx(1 / (1 + math.e), abs=1e-6)


def test_arcface_by_hand():
    # Class weights on the x and y axes; an embedding at 45° of class 0. Its own logit gets the angular
    # margin (28.6°): 30·cos(73.6°); the other's is 30·cos(45°). Cross-entropy = ln(1 + e^(other − own)).
    loss = create_loss("arcface", dim=2, classes=2)
    loss.loss.W.data = torch.eye(2)
    own, other = 30 * math.cos(math.radians(45 + 28.6)), 30 * math.cos(math.radians(45))
    assert loss(unit(45), torch.tensor([0])).item() == pytest.approx(math.log1p(math.exp(other - own)), rel=1e-4)
    assert sum(p.numel() for p in loss.parameters()) == 4  # its class weights train with the network


def test_prototypical_by_hand():
    # shots=2, batch order a(0) d(1) b(0) e(1) c(0): class 0's support is a=(1,0), b=(0,1) (its first
    # two), so its prototype is (0.5, 0.5); class 1's is d=e=(−1,0), with no query left (a distractor).
    # The one query c=(1,0): squared distances 0.5 and 4; with the scale set to 1 the logits are −0.5
    # and −4, and the cross-entropy is ln(1 + e^(−3.5)). Taking c as support instead would give 0.
    loss = create_loss("prototypical", dim=2, classes=2, shots=2)
    loss.log_scale.data = torch.tensor(0.0)
    batch = torch.tensor([[1.0, 0], [-1, 0], [0, 1], [-1, 0], [1, 0]])
    assert loss(batch, torch.tensor([0, 1, 0, 1, 0])).item() == pytest.approx(math.log1p(math.exp(-3.5)), abs=1e-6)
    # The learnt scale starts at 10: the same batch costs ln(1 + e^(−35)).
    fresh = create_loss("prototypical", dim=2, classes=2, shots=2)
    assert fresh(batch, torch.tensor([0, 1, 0, 1, 0])).item() == pytest.approx(math.log1p(math.exp(-35)), abs=1e-9)
    assert [name for name, _ in fresh.named_parameters()] == ["log_scale"]
    # A batch of supports only has nothing to classify.
    with pytest.raises(ConfigError, match="more than 2 samples"):
        loss(batch[:4], torch.tensor([0, 1, 0, 1]))


def test_every_loss_trains_and_unknown_names_are_listed():
    for name in LOSSES:
        loss = create_loss(name, dim=2, classes=2)
        embeddings = BATCH.clone().requires_grad_(True)
        loss(embeddings, LABELS).backward()
        assert embeddings.grad is not None and torch.isfinite(embeddings.grad).all()
    with pytest.raises(ConfigError, match="triplet, contrastive, siamese, arcface, prototypical"):
        create_loss("hinge", dim=2, classes=2)
    with pytest.raises(ConfigError, match="semihard, batch-hard, all"):
        create_loss("triplet", dim=2, classes=2, mining="hardest")
