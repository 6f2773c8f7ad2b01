"""The networks ``faceshot train`` can learn, chosen by name: ``small-cnn`` and ``face-adapter``.

Each maps its input to unit-length vectors and describes that input (``input_kind``) so the
exported file can say what it takes:

- ``small-cnn``: four blocks of 3×3 convolution (64 filters), batch norm, ReLU and 2×2 max pooling,
  the network of Matching and Prototypical Networks, trained from scratch on ``uint8 (N, size, size,
  channels)`` images. For domains with no pretrained network: handwriting, symbols, parts.
- ``face-adapter``: a small residual projection over a frozen face embedder's vectors:
  ``normalize(x + W2·relu(W1·x + b1) + b2)``. W2 starts at zero, so before training it *is* the
  pretrained embedder: training can only move it away from there as far as the data asks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from faceshot.registry import Registry

__all__ = ["Backbone", "SmallCNN", "FaceAdapter", "backbones", "create_backbone"]


class Backbone(nn.Module):
    """A network whose ``forward`` gives ``(N, dim)`` unit vectors."""

    name: str
    dim: int

    def input_kind(self) -> dict[str, str]:
        """The ``faceshot.*`` metadata that tells an embedder how to feed the exported model."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this network (stored in checkpoints)."""
        raise NotImplementedError


class SmallCNN(Backbone):
    """Conv-64 ×4 on ``uint8 (N, size, size, channels)`` images; ``dim = 64 · (size // 16)²``."""

    name = "small-cnn"

    def __init__(self, size: int = 28, channels: int = 1, width: int = 64) -> None:
        super().__init__()
        self.size, self.channels, self.width = size, channels, width
        blocks: list[nn.Module] = []
        inputs = channels
        for _ in range(4):
            blocks += [nn.Conv2d(inputs, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
            inputs = width
        self.blocks = nn.Sequential(*blocks)
        self.dim = width * (size // 16) ** 2

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 255.0
        return F.normalize(self.blocks(x).flatten(1), dim=1)

    def input_kind(self) -> dict[str, str]:
        return {"faceshot.input": "image", "faceshot.size": str(self.size), "faceshot.channels": str(self.channels)}

    def options(self) -> dict[str, Any]:
        return {"size": self.size, "channels": self.channels, "width": self.width}


class FaceAdapter(Backbone):
    """A residual projection of a frozen embedder's ``(N, dim_in)`` unit vectors, identity at the start."""

    name = "face-adapter"

    def __init__(self, dim_in: int = 128, hidden: int = 128, base: str = "dlib-resnet-onnx") -> None:
        super().__init__()
        self.dim_in, self.hidden, self.base, self.dim = dim_in, hidden, base, dim_in
        self.inner = nn.Linear(dim_in, hidden)
        self.outer = nn.Linear(hidden, dim_in)
        nn.init.zeros_(self.outer.weight)
        nn.init.zeros_(self.outer.bias)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return F.normalize(vectors + self.outer(F.relu(self.inner(vectors))), dim=1)

    def input_kind(self) -> dict[str, str]:
        return {"faceshot.input": "embedding", "faceshot.base": self.base}

    def options(self) -> dict[str, Any]:
        return {"dim_in": self.dim_in, "hidden": self.hidden, "base": self.base}


backbones: Registry[Backbone] = Registry("backbone")
backbones.register("small-cnn")(SmallCNN)
backbones.register("face-adapter")(FaceAdapter)


def create_backbone(name: str, **options: Any) -> Backbone:
    """The network registered as ``name``; an unknown name raises and lists the others."""
    return backbones.create(name, **options)
