"""A model file made by ``faceshot train`` (or any ONNX file carrying faceshot's metadata) as an embedder.

``create_embedder("path/to/model.onnx")`` loads one. The file says, in its ``metadata_props``, what
it takes, so that the embedder knows how to feed it:

- ``faceshot.input = embedding``: a head (the face adapter) over a base embedder named in
  ``faceshot.base``; its input is that embedder's ``(N, dim)`` unit vectors. The embedder runs the base
  on the chips and the head on its vectors, so it takes the base's chips (``dlib-5pt`` for dlib).
  The file holds only the head (kilobytes), not a copy of the 22 MB base network.
- ``faceshot.input = image``: a network over whole images, ``uint8 (N, size, size, channels)``
  (``faceshot.size``, ``faceshot.channels``); :func:`prepare_image` makes them from files. Such a
  model has no face aligner: it serves few-shot evaluation of non-face domains (handwriting).

Its vectors are in their own space, ``<name>@<first 12 hex digits of the file's sha256>``: a
gallery built with it refuses any other model, even one of the same name trained again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from faceshot.embed import Embedder, normalize
from faceshot.errors import ModelError
from faceshot.io import load_image
from faceshot.onnx_graphs import new_session

__all__ = ["OnnxModelEmbedder", "prepare_image", "FORMAT", "WHOLE_IMAGE"]

#: The version of the metadata this module reads; ``faceshot train`` writes it.
FORMAT = "1"
#: The ``aligner`` of models that take whole images rather than face chips.
WHOLE_IMAGE = "whole-image"
_REQUIRED = ("faceshot.format", "faceshot.name", "faceshot.input")


def prepare_image(source: str | os.PathLike | np.ndarray, size: int, channels: int) -> np.ndarray:
    """An image file (or array) as the ``uint8 (size, size, channels)`` array an image model takes.

    Training and inference both use this function, so a model sees the same pixels in both.
    """
    image = Image.fromarray(load_image(source) if not isinstance(source, np.ndarray) else source)
    image = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if channels == 1 else array


class OnnxModelEmbedder(Embedder):
    """An embedder read from an ONNX file with faceshot metadata (see the module's documentation).

    ``threads``: cores onnxruntime (and the base embedder) may use (default: the process's thread
    budget, :func:`faceshot.onnx_graphs.thread_budget`). ``batch_size``: inputs per run.
    Raises :class:`ModelError` when the file is missing, damaged, or not such a model.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, batch_size: int = 256) -> None:
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read model {self.path}: {exc.strerror or exc}") from None
        self.props, self._inputs, self._outputs = _inspect(data, self.path)
        self.name = self.props["faceshot.name"]
        self.input = self.props["faceshot.input"]
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.threads = threads
        self.batch_size = batch_size
        self.dim = int(self._outputs[0][1][-1])
        self.base: Embedder | None = None
        if self.input == "embedding":
            from faceshot.embed import create_embedder

            base = self.props.get("faceshot.base", "")
            self.base = create_embedder(base, **({"threads": threads} if threads else {}))
            if self._inputs[0][1][-1] != self.base.dim:
                raise ModelError(f"{self.path} takes {self._inputs[0][1][-1]}-D vectors, but {base} gives {self.base.dim}-D")
            self.aligner = self.base.aligner
        elif self.input == "image":
            self.size, self.channels = int(self.props.get("faceshot.size", 0)), int(self.props.get("faceshot.channels", 0))
            if list(self._inputs[0][1][1:]) != [self.size, self.size, self.channels] or self._inputs[0][2] != "uint8":
                raise ModelError(
                    f"{self.path}: its metadata says uint8 images of {self.size}×{self.size}×{self.channels}, "
                    f"but the graph takes {self._inputs[0][2]} {self._inputs[0][1]}"
                )
            self.aligner = WHOLE_IMAGE
        else:
            raise ModelError(f"{self.path}: unknown input kind {self.input!r} (expected 'image' or 'embedding')")
        self._data = data
        self._session: Any = None

    @property
    def space(self) -> str:
        return f"{self.name}@{self.sha256[:12]}"

    @property
    def calibration(self) -> None:
        # A trained model has no measured operating points: verification needs an explicit threshold.
        return None

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """Face chips of the base's aligner (adapter), or prepared images (image model) → unit vectors."""
        if self.base is not None:
            return self.embed_vectors(self.base.embed(chips))
        chips = np.asarray(chips)
        if chips.ndim != 4 or chips.shape[1:] != (self.size, self.size, self.channels) or chips.dtype != np.uint8:
            raise ValueError(
                f"{self.name} takes uint8 images of shape (N, {self.size}, {self.size}, {self.channels}) "
                f"(see prepare_image), got {chips.dtype} {chips.shape}"
            )
        return self._run(chips)

    def embed_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """The head alone, on vectors of the base embedder (an adapter's input)."""
        if self.base is None:
            raise ModelError(f"{self.name} takes images, not vectors")
        return self._run(np.asarray(vectors, dtype=np.float32))

    def embed_files(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """Whole image files → unit vectors (image models only; face models go through an Engine)."""
        if self.base is not None:
            raise ModelError(f"{self.name} takes face chips: embed its files through an Engine")
        if not paths:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.embed(np.stack([prepare_image(p, self.size, self.channels) for p in paths]))

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        if len(inputs) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        session = self._start()
        name = self._inputs[0][0]
        out = [session.run(None, {name: inputs[i : i + self.batch_size]})[0] for i in range(0, len(inputs), self.batch_size)]
        return normalize(np.concatenate(out))

    def _start(self) -> Any:
        # One session per embedder, shared by its threads (onnxruntime sessions are thread-safe);
        # two threads starting it at once make two, and one is dropped: harmless.
        if self._session is None:
            self._session = new_session(self._data, self.threads, what=str(self.path))
        return self._session

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes rebuild the onnxruntime session rather than receive it.
        return self.__dict__ | {"_session": None}


def _inspect(data: bytes, path: Path) -> tuple[dict[str, str], list[tuple[str, list[Any], str]], list[tuple[str, list[Any], str]]]:
    """The metadata, inputs and outputs of a serialized model; :class:`ModelError` if it is not usable."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf's DecodeError, onnx's ValidationError, among others
        raise ModelError(f"{path} is not a valid ONNX model (damaged or another format): {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    props = {p.key: p.value for p in model.metadata_props}
    missing = [key for key in _REQUIRED if key not in props]
    if missing:
        raise ModelError(
            f"{path} is an ONNX model, but not one made by `faceshot train`: it lacks the metadata "
            f"{', '.join(missing)} that says what it takes; for another face embedder, describe it in a "
            f"model card {path.with_suffix('.card.json').name} beside it, or name one with :card=FILE "
            "(see faceshot.embed.card)"
        )
    if props["faceshot.format"] != FORMAT:
        raise ModelError(f"{path} was written in model format {props['faceshot.format']}; this faceshot reads format {FORMAT}")
    initializers = {i.name for i in model.graph.initializer}

    def describe(values: Any) -> list[tuple[str, list[Any], str]]:
        found = []
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor.shape.dim]
            found.append((value.name, shape, onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name))
        return found

    inputs, outputs = describe(model.graph.input), describe(model.graph.output)
    if len(inputs) != 1 or len(outputs) < 1 or len(outputs[0][1]) != 2 or not isinstance(outputs[0][1][-1], int):
        raise ModelError(f"{path}: expected one input and an (N, dim) output, got inputs {inputs} and outputs {outputs}")
    return props, inputs, outputs
