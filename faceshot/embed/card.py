"""Bring your own ONNX face embedder, described by a model card rather than guessed from its tensors.

A card is a small JSON file, kept beside the model under its name with ``.card.json`` for
``.onnx`` (``face.card.json`` beside ``face.onnx``: found there automatically, so galleries reopen
with the model alone) or named with ``face.onnx:card=FILE``::

    {
      "card": 1,
      "name": "arcface-r50",            # what the vectors are called; the space adds the file's hash
      "input": "input.1",               # the graph's input tensor
      "layout": "NCHW",                 # or "NHWC"
      "dtype": "float32",               # or "uint8" (then mean/std are not applied)
      "size": 112,                      # chip side, pixels
      "colour": "RGB",                  # or "BGR": channel order the network expects
      "mean": [127.5, 127.5, 127.5],    # (pixel - mean) / std, per channel, in that order
      "std": [127.5, 127.5, 127.5],
      "dim": 512,                       # output vector length
      "aligner": "arcface-112",         # how chips are cut: its landmark template (see faceshot.align)
      "mirror": false,                  # average each chip's vector with its mirror image's
      "calibration": "arcface.far.json" # optional: `faceshot calibrate --out` of this model (a FAR table)
    }

The vectors' space is ``<name>@<first 12 hex digits of the model's sha256>/<aligner>``: a gallery
built with the model refuses vectors of any other file or chip cut. Without a calibration the model
has no operating points, and verification and identification need an explicit threshold.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceshot.align import aligners
from faceshot.embed import Embedder, normalize
from faceshot.errors import ConfigError, ModelError
from faceshot.match import Calibration
from faceshot.onnx_graphs import new_session

__all__ = ["ModelCard", "CardEmbedder", "card_beside"]

CARD_VERSION = 1


def card_beside(model: str | os.PathLike[str]) -> Path | None:
    """The card kept beside a model file (``face.onnx`` → ``face.card.json``), if there is one."""
    path = Path(model)
    card = path.with_name(path.name[: -len(path.suffix)] + ".card.json")
    return card if card.is_file() else None


@dataclass(frozen=True)
class ModelCard:
    """What a card file says (see the module). Raises :class:`ConfigError` for a bad field."""

    name: str
    input: str
    layout: str
    dtype: str
    size: int
    colour: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dim: int
    aligner: str
    mirror: bool
    calibration: Path | None

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> "ModelCard":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read the model card {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ConfigError(f"the model card {path} is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("card") != CARD_VERSION:
            raise ConfigError(f"{path} is not a model card of version {CARD_VERSION} (its \"card\" field)")

        def field(key: str, kind: type, default: Any = ..., choices: tuple[Any, ...] = ()) -> Any:
            value = data.get(key, default)
            if value is ...:
                raise ConfigError(f"the model card {path} lacks {key!r}")
            if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool) or (choices and value not in choices):
                wanted = f"one of {', '.join(map(str, choices))}" if choices else kind.__name__
                raise ConfigError(f"the model card {path}: {key!r} must be {wanted}, got {value!r}")
            return value

        def triple(key: str, default: list[float]) -> tuple[float, float, float]:
            value = data.get(key, default)
            if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, (int, float)) for v in value):
                raise ConfigError(f"the model card {path}: {key!r} must be three numbers (one per channel), got {value!r}")
            return tuple(float(v) for v in value)  # type: ignore[return-value]

        std = triple("std", [1.0, 1.0, 1.0])
        if any(v <= 0 for v in std):
            raise ConfigError(f"the model card {path}: 'std' must be positive, got {list(std)}")
        calibration = field("calibration", str, None) if data.get("calibration") is not None else None
        aligner = field("aligner", str)
        if aligner not in aligners.names():
            raise ConfigError(f"the model card {path}: unknown aligner {aligner!r}; these exist: {', '.join(aligners.names())}")
        return cls(
            name=field("name", str),
            input=field("input", str),
            layout=field("layout", str, choices=("NCHW", "NHWC")),
            dtype=field("dtype", str, "float32", choices=("float32", "uint8")),
            size=field("size", int),
            colour=field("colour", str, "RGB", choices=("RGB", "BGR")),
            mean=triple("mean", [0.0, 0.0, 0.0]),
            std=std,
            dim=field("dim", int),
            aligner=aligner,
            mirror=field("mirror", bool, False),
            calibration=None if calibration is None else (path.parent / calibration),
        )


class CardEmbedder(Embedder):
    """An ONNX face embedder fed as its card says. ``threads``: onnxruntime's (default: the
    process's thread budget); ``batch_size``: chips per run.

    Raises :class:`ModelError` when the model is missing or damaged, or its graph disagrees with the
    card (input name, output length); :class:`ConfigError` for a bad card or calibration.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        card: str | os.PathLike[str],
        *,
        threads: int | None = None,
        batch_size: int = 32,
    ) -> None:
        self.path = Path(model)
        self.card = ModelCard.read(card)
        try:
            self._data = self.path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read model {self.path}: {exc.strerror or exc}") from None
        self.sha256 = hashlib.sha256(self._data).hexdigest()
        self.name = self.card.name
        self.dim = self.card.dim
        self.aligner = self.card.aligner
        self.size = self.card.size
        self.threads = threads
        self.batch_size = batch_size
        self._session: Any = None
        self._calibration = self._read_calibration()

    @property
    def space(self) -> str:
        return f"{self.card.name}@{self.sha256[:12]}/{self.card.aligner}"

    @property
    def calibration(self) -> Calibration | None:
        return self._calibration

    def _read_calibration(self) -> Calibration | None:
        path = self.card.calibration
        if path is None:
            return None
        try:
            calibration = Calibration.from_dict(json.loads(path.read_text()))
        except OSError as exc:
            raise ConfigError(f"cannot read the calibration {path} named by the model card: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ConfigError(f"the calibration {path} is not JSON: {exc}") from None
        if calibration.embedder != self.space:
            raise ConfigError(
                f"the calibration {path} was measured with {calibration.embedder!r}, not this model's "
                f"{self.space!r}; run `faceshot calibrate --embedder {self.path} --out {path.name}` again"
            )
        return calibration

    def _start(self) -> Any:
        if self._session is None:
            session = new_session(self._data, self.threads, what=str(self.path))
            inputs = [i.name for i in session.get_inputs()]
            if inputs != [self.card.input]:
                raise ModelError(f"{self.path} takes {', '.join(inputs)}, but its card says {self.card.input!r}")
            self._session = session
        return self._session

    def _tensor(self, chips: np.ndarray) -> np.ndarray:
        card = self.card
        if card.colour == "BGR":
            chips = chips[..., ::-1]
        if card.dtype == "uint8":
            tensor = np.ascontiguousarray(chips, dtype=np.uint8)
        else:
            tensor = (chips.astype(np.float32) - np.float32(card.mean)) / np.float32(card.std)
        return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2) if card.layout == "NCHW" else tensor)

    def _vectors(self, chips: np.ndarray) -> np.ndarray:
        session = self._start()
        out = [
            session.run(None, {self.card.input: self._tensor(chips[i : i + self.batch_size])})[0]
            for i in range(0, len(chips), self.batch_size)
        ]
        vectors = np.concatenate(out).astype(np.float32, copy=False).reshape(len(chips), -1)
        if vectors.shape[1] != self.dim:
            raise ModelError(f"{self.path} gives {vectors.shape[1]}-D vectors, but its card says {self.dim}")
        return normalize(vectors)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """``(N, size, size, 3)`` uint8 RGB chips of the card's aligner → ``(N, dim)`` float32 unit vectors."""
        chips = np.asarray(chips)
        if chips.ndim != 4 or chips.shape[1:] != (self.size, self.size, 3) or chips.dtype != np.uint8:
            raise ValueError(f"{self.name} embeds uint8 chips of shape (N, {self.size}, {self.size}, 3), got {chips.dtype} {chips.shape}")
        if len(chips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self.card.mirror:
            return self._vectors(chips)
        both = self._vectors(np.concatenate([chips, chips[:, :, ::-1]]))
        return normalize(both[: len(chips)] + both[len(chips) :])

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_session": None}  # worker processes start their own session
