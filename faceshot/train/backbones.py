"""The networks ``faceshot train`` can learn, chosen by name: ``small-cnn``, ``koch`` and ``face-adapter``.

Each maps its input to unit-length vectors and describes that input (``input_kind``) so the
exported file can say what it takes:

- ``small-cnn``: four blocks of 3×3 convolution (64 filters), batch norm, ReLU and 2×2 max pooling,
  the network of Matching and Prototypical Networks, trained from scratch on ``uint8 (N, size, size,
  channels)`` images. For domains with no pretrained network: handwriting, symbols, parts.
- ``koch``: the convolutional Siamese network of Koch, Zemel and Salakhutdinov (2015): convolutions
  of 64@10×10, 128@7×7, 128@4×4 and 256@4×4 with ReLU, max pooling after the first three, then a
  4,096-unit sigmoid layer. On its 105×105 input it costs about 0.9 GMAC per image, 90× the
  ``small-cnn``; ``size`` scales the input and the kernels alike (56 px: 5, 4, 2, 2), which keeps
  the layers and widths and makes it trainable in minutes on a CPU. Its features are compared by
  the ``siamese`` loss's weighted L1 head in training, by cosine once exported.
- ``face-adapter``: a small residual projection over a frozen face embedder's vectors:
  ``normalize(x + W2·relu(W1·x + b1) + b2)``. W2 starts at zero, so before training it *is* the
  pretrained embedder: training can only move it away from there as far as the data asks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from faceshot.errors import ConfigError
from faceshot.registry import Registry

__all__ = ["Backbone", "SmallCNN", "KochNet", "FaceAdapter", "backbones", "create_backbone"]


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


class KochNet(Backbone):
    """Koch et al.'s Siamese twin on ``uint8 (N, size, size, channels)`` images; ``dim = 4096``."""

    name = "koch"
    KERNELS = (10, 7, 4, 4)
    WIDTHS = (64, 128, 128, 256)

    def __init__(self, size: int = 56, channels: int = 1, dim: int = 4096) -> None:
        super().__init__()
        self.size, self.channels, self.dim = size, channels, dim
        self.kernels = tuple(max(2, round(k * size / 105)) for k in self.KERNELS)
        layers: list[nn.Module] = []
        inputs, side = channels, size
        for i, (kernel, width) in enumerate(zip(self.kernels, self.WIDTHS)):
            layers += [nn.Conv2d(inputs, width, kernel), nn.ReLU()]
            side -= kernel - 1
            if i < 3:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            inputs = width
        if side < 1:
            raise ConfigError(f"koch: {size} px is too small for its four convolutions; use 40 px or more")
        self.convs = nn.Sequential(*layers)
        self.side = side
        self.fc = nn.Linear(inputs * side * side, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 255.0
        return F.normalize(torch.sigmoid(self.fc(self.convs(x).flatten(1))), dim=1)

    def input_kind(self) -> dict[str, str]:
        return {"faceshot.input": "image", "faceshot.size": str(self.size), "faceshot.channels": str(self.channels)}

    def options(self) -> dict[str, Any]:
        return {"size": self.size, "channels": self.channels, "dim": self.dim}


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
backbones.register("koch")(KochNet)
backbones.register("face-adapter")(FaceAdapter)


def create_backbone(name: str, **options: Any) -> Backbone:
    """The network registered as ``name``; an unknown name raises and lists the others."""
    return backbones.create(name, **options)
