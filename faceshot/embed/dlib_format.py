"""A reader for dlib's serialized ``dnn`` networks (``dlib::serialize(net, out)``), no dlib needed.

It reads the layers a dlib network file holds, in the order dlib computes them (input first),
with their shapes and weights as numpy arrays. The format, from dlib's sources:

- **integers** (``int``, ``long``, ``size_t``...): one byte ``sign << 7 | n`` then ``n`` ≤ 8 bytes of
  the magnitude, little-endian (``dlib/serialize.h``, ``pack_int``);
- **floats and doubles**: two integers, a mantissa and an exponent, ``value = mantissa · 2^exponent``
  (``dlib/float_details.h``); exponents 32000-32002 mean +inf, -inf and NaN;
- **strings**: a length, then the bytes; **bools**: the character ``'1'`` or ``'0'``;
- **tensors**: a version, the four dimensions (samples, k, rows, columns), then the values:
  version 1 as dlib floats, version 2 as raw little-endian float32 (``dlib/dnn/tensor.h``);
- **batch normalisation** (``bn_con2``) is stored with its running statistics where an ``affine_`` layer
  belongs in files saved straight from training (dlib's MMOD face detector is one); dlib folds it into
  an affine layer on loading, ``gamma / sqrt(running variance + eps)`` and ``beta − gamma · running mean``
  in float32, and so does this reader;
- **a network** ``add_loss_layer<LOSS, add_layer<L1, add_layer<L2, ... INPUT>>>`` is written from the
  outside in: the loss layer's version and details, then one version number per wrapper (``add_layer``
  2, or 3 for the one that holds the input layer; ``add_tag_layer`` and ``add_skip_layer`` 1), then the
  input layer, then each ``add_layer``'s details from the innermost outwards, each followed by its
  bookkeeping (three bools and some empty tensors).

Tag and skip wrappers write nothing but their version, so **the file does not say which tag a skip or
an ``add_prev`` refers to**: the connections come from the network's definition in C++, and whoever
interprets the layers must supply it (see :mod:`faceshot.embed.dlib_onnx`). What the file does say is
where the wrappers stand, and :attr:`DlibNetwork.layers` keeps them there as :class:`Wrapper` items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceshot.errors import ModelError

__all__ = [
    "DlibNetwork",
    "InputRGB",
    "InputPyramid",
    "MmodOptions",
    "DetectorWindow",
    "Conv",
    "Affine",
    "Relu",
    "Pool",
    "AddPrev",
    "FullyConnected",
    "Wrapper",
    "Layer",
    "read_network",
]


# --- the layers ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class InputRGB:
    """``input_rgb_image_sized<NR, NC>``: ``(pixel - mean) / 256`` per channel, RGB order."""

    mean: tuple[float, float, float]
    rows: int
    columns: int


@dataclass(frozen=True, eq=False)
class InputPyramid:
    """``input_rgb_image_pyramid<PYR>``: the image and its downscaled copies tiled into one image.

    Values are ``(pixel - mean) / 256`` per channel, RGB order; ``padding`` pixels of zeros separate
    the tiles and ``outer_padding`` surround them. The pyramid's scale step (``pyramid_down<N>``) is a
    C++ template argument, not in the file. Files written before dlib 19.7 hold no padding; dlib
    then uses 10 and 11, and so does this reader.
    """

    mean: tuple[float, float, float]
    padding: int
    outer_padding: int


@dataclass(frozen=True, eq=False)
class Conv:
    """``con_``: ``filters`` is ``(out, in, rows, columns)`` (a correlation, as in ONNX); ``bias`` ``(out,)``."""

    filters: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, eq=False)
class Affine:
    """``affine_``: ``gamma * x + beta``, one pair per channel (batch norm with its statistics folded in)."""

    gamma: np.ndarray
    beta: np.ndarray


@dataclass(frozen=True, eq=False)
class Relu:
    """``relu_``."""


@dataclass(frozen=True, eq=False)
class Pool:
    """``max_pool_`` / ``avg_pool_``; a window of 0 rows/columns covers the whole input (global pooling)."""

    kind: str  # "max" or "avg"
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, eq=False)
class AddPrev:
    """``add_prev_``: adds the output of a tagged layer (which tag: not in the file)."""


@dataclass(frozen=True, eq=False)
class FullyConnected:
    """``fc_``: ``x @ weights (+ bias)``, ``weights`` of shape ``(inputs, outputs)``."""

    weights: np.ndarray
    bias: np.ndarray | None


@dataclass(frozen=True, eq=False)
class Wrapper:
    """An ``add_tag_layer`` or ``add_skip_layer`` (the file cannot tell which, nor its id)."""


@dataclass(frozen=True)
class DetectorWindow:
    """One sliding window of an MMOD detector, in pixels of the pyramid level it fires on."""

    width: int
    height: int
    label: str = ""


@dataclass(frozen=True)
class MmodOptions:
    """``loss_mmod_``'s options (``mmod_options``): the detector windows and the overlap tests.

    Two boxes overlap for non-max suppression when their intersection over the area of the box that
    bounds both exceeds ``nms_iou``, or covers more than ``nms_percent_covered`` of either one.
    The loss and ``ignore`` settings are used only in training.
    """

    windows: tuple[DetectorWindow, ...]
    loss_per_false_alarm: float
    loss_per_missed_target: float
    truth_match_iou: float
    nms_iou: float
    nms_percent_covered: float
    ignore_iou: float
    ignore_percent_covered: float
    assume_image_pyramid: bool = True
    bounding_box_regression: bool = False
    bbr_lambda: float = 100.0


Layer = Conv | Affine | Relu | Pool | AddPrev | FullyConnected | Wrapper


@dataclass(frozen=True, eq=False)
class DlibNetwork:
    """A dlib network read from a file: ``layers`` in the order dlib computes them (input side first)."""

    loss: str
    input: InputRGB | InputPyramid
    layers: tuple[Layer, ...] = field(repr=False)
    mmod: MmodOptions | None = None  # the detector's options, for a loss_mmod network


# --- the primitives ----------------------------------------------------------------------------

_INF, _NINF, _NAN = 32000, 32001, 32002


class _FormatError(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _FormatError("the file ends too early (truncated?)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        (header,) = self._take(1)
        size = header & 0x0F
        if header & 0x70 or size > 8:
            raise _FormatError(f"byte {header:#04x} does not start an integer")
        value = int.from_bytes(self._take(size), "little")
        return -value if header & 0x80 else value

    def uint(self) -> int:
        value = self.int()
        if value < 0:
            raise _FormatError("a negative number where a size belongs")
        return value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent == _INF:
            return math.inf
        if exponent == _NINF:
            return -math.inf
        if exponent == _NAN:
            return math.nan
        try:
            return math.ldexp(mantissa, exponent)
        except OverflowError:
            raise _FormatError(f"a number out of range ({mantissa} * 2^{exponent})") from None

    def string(self) -> str:
        size = self.uint()
        if size > 1024:
            raise _FormatError(f"a string of {size} bytes where a layer name belongs")
        try:
            return self._take(size).decode("ascii")
        except UnicodeDecodeError:
            raise _FormatError("a name that is not text") from None

    def bool(self) -> bool:
        char = self._take(1)
        if char not in (b"0", b"1"):
            raise _FormatError(f"byte {char!r} is not a bool")
        return char == b"1"

    def tensor(self) -> np.ndarray:
        version = self.int()
        shape = tuple(self.uint() for _ in range(4))
        count = math.prod(shape)
        if version == 2:  # raw little-endian float32
            if count * 4 > len(self.data) - self.pos:
                raise _FormatError("the file ends inside a tensor (truncated?)")
            values = np.frombuffer(self._take(count * 4), dtype="<f4").astype(np.float32)
        elif version == 1:  # dlib floats, one by one (older files): at least 4 bytes each
            if count * 4 > len(self.data) - self.pos:
                raise _FormatError("the file ends inside a tensor (truncated?)")
            values = np.array([self.float() for _ in range(count)], dtype=np.float32)
        else:
            raise _FormatError(f"unknown tensor version {version}")
        return values.reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        if (version := self.int()) != 1:
            raise _FormatError(f"unknown alias_tensor version {version}")
        return tuple(self.uint() for _ in range(4))  # type: ignore[return-value]

    def peek_string(self) -> str | None:
        """The layer name at the current position, if one starts here (the position is kept)."""
        start = self.pos
        try:
            name = self.string()
        except _FormatError:
            return None
        finally:
            self.pos = start
        return name if name and name.replace("_", "").isalnum() else None


# --- the layers' details -----------------------------------------------------------------------


def _input(r: _Reader, name: str) -> InputRGB | InputPyramid:
    if name == "input_rgb_image_sized":
        mean = (r.float(), r.float(), r.float())
        return InputRGB(mean=mean, rows=r.uint(), columns=r.uint())
    if name in ("input_rgb_image_pyramid", "input_rgb_image_pyramid2"):
        mean = (r.float(), r.float(), r.float())
        if name == "input_rgb_image_pyramid":  # dlib's defaults for files that hold none
            return InputPyramid(mean=mean, padding=10, outer_padding=11)
        return InputPyramid(mean=mean, padding=r.uint(), outer_padding=r.uint())
    raise _FormatError(f"input layer {name!r} is not supported (only input_rgb_image_sized and _pyramid)")


def _conv(r: _Reader, name: str) -> Conv:
    params = r.tensor().ravel()
    num_filters, rows, columns = r.uint(), r.uint(), r.uint()
    stride = (r.uint(), r.uint())
    padding = (r.uint(), r.uint())
    filters_shape, bias_shape = r.alias_tensor(), r.alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float()
    use_bias = r.bool() if name in ("con_5", "con_6") else True
    if name == "con_6" and r.bool():
        raise _FormatError("con_ with a fused relu is not supported")
    n_filters = math.prod(filters_shape)
    n_bias = math.prod(bias_shape) if use_bias else 0
    if filters_shape[0] != num_filters or filters_shape[2:] != (rows, columns) or n_filters + n_bias != params.size:
        raise _FormatError(f"con_ shapes disagree: filters {filters_shape}, {params.size} parameters")
    filters = params[:n_filters].reshape(filters_shape)
    bias = params[n_filters:].copy() if n_bias else None
    if bias is not None and bias.size != num_filters:
        raise _FormatError(f"con_ has {bias.size} biases for {num_filters} filters")
    return Conv(filters=filters, bias=bias, stride=stride, padding=padding)


def _affine(r: _Reader, name: str) -> Affine:
    params = r.tensor().ravel()
    gamma_shape, beta_shape = r.alias_tensor(), r.alias_tensor()
    r.int()  # mode: CONV_MODE / FC_MODE; the gamma shape says the same
    if name == "affine_2" and r.bool():
        raise _FormatError("a disabled affine_ layer is not supported")
    n = math.prod(gamma_shape)
    if gamma_shape != beta_shape or 2 * n != params.size or gamma_shape[2:] != (1, 1):
        raise _FormatError(f"affine_ shapes disagree: gamma {gamma_shape}, {params.size} parameters")
    return Affine(gamma=params[:n].copy(), beta=params[n:].copy())


def _batch_norm(r: _Reader, name: str) -> Affine:
    params = r.tensor().ravel()
    gamma_shape, beta_shape = r.alias_tensor(), r.alias_tensor()
    for _ in range(2):  # the last batch's means and inverse deviations: training only
        r.tensor()
    running_means, running_variances = r.tensor().ravel(), r.tensor().ravel()
    r.uint(), r.uint()  # updates so far, window of the running statistics
    for _ in range(4):
        r.float()
    eps = np.float32(r.float())
    n = math.prod(gamma_shape)
    if gamma_shape != beta_shape or 2 * n != params.size or running_means.size != n or running_variances.size != n:
        raise _FormatError(f"{name} shapes disagree: gamma {gamma_shape}, {params.size} parameters")
    # dlib's conversion to affine_, in float32 as dlib computes it.
    gamma = params[:n] / np.sqrt(running_variances + eps)
    beta = params[n:] - gamma * running_means
    return Affine(gamma=gamma.astype(np.float32), beta=beta.astype(np.float32))


def _pool(r: _Reader, name: str) -> Pool:
    window = (r.uint(), r.uint())
    stride = (r.uint(), r.uint())
    padding = (r.uint(), r.uint())
    return Pool(kind=name[:3], window=window, stride=stride, padding=padding)


def _fc(r: _Reader, name: str) -> FullyConnected:
    outputs, inputs = r.uint(), r.uint()
    params = r.tensor().ravel()
    weights_shape, bias_shape = r.alias_tensor(), r.alias_tensor()
    has_bias = r.int() == 0  # FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    for _ in range(4):
        r.float()
    if weights_shape[:2] != (inputs, outputs):
        raise _FormatError(f"fc_ weights {weights_shape} for {inputs} inputs and {outputs} outputs")
    n = inputs * outputs
    if params.size != n + (outputs if has_bias else 0):
        raise _FormatError(f"fc_ has {params.size} parameters for {inputs}x{outputs}")
    bias = params[n:].copy() if has_bias else None
    return FullyConnected(weights=params[:n].reshape(inputs, outputs), bias=bias)


_DETAILS = {
    "con_4": _conv,
    "con_5": _conv,
    "con_6": _conv,
    "affine_": _affine,
    "affine_2": _affine,
    "bn_con2": _batch_norm,
    "relu_": lambda r, name: Relu(),
    "max_pool_2": _pool,
    "avg_pool_2": _pool,
    "add_prev_": lambda r, name: AddPrev(),
    "fc_2": _fc,
}


def _details(r: _Reader) -> Layer:
    name = r.string()
    try:
        read = _DETAILS[name]
    except KeyError:
        raise _FormatError(f"layer type {name!r} is not supported") from None
    return read(r, name)


def _bookkeeping(r: _Reader, version: int, holds_input: bool) -> None:
    """What ``add_layer`` writes after its details: three bools and empty (or stale) tensors."""
    for _ in range(3):
        r.bool()
    tensors = 3 if version >= 2 else 2  # x_grad, cached_output, and params_grad or grad_final
    for _ in range(tensors):
        r.tensor()
    if holds_input and version >= 3:
        r.uint()  # sample_expansion_factor


def _mmod_options(r: _Reader) -> MmodOptions:
    version = r.int()
    if not 1 <= version <= 4:
        raise _FormatError(f"unknown mmod_options version {version}")
    if version == 1:  # one window, no label
        windows: list[DetectorWindow] = [DetectorWindow(r.uint(), r.uint())]
    else:
        windows = []
        for _ in range(r.uint()):
            window_version = r.int()
            if window_version not in (1, 2):
                raise _FormatError(f"unknown detector window version {window_version}")
            width, height = r.uint(), r.uint()
            windows.append(DetectorWindow(width, height, r.string() if window_version == 2 else ""))
    numbers = [r.float() for _ in range(7)]
    options = dict(zip(
        ["loss_per_false_alarm", "loss_per_missed_target", "truth_match_iou",
         "nms_iou", "nms_percent_covered", "ignore_iou", "ignore_percent_covered"],
        numbers,
    ))
    if version >= 3:
        options["assume_image_pyramid"] = r.uint() == 1  # use_image_pyramid::yes
    if version >= 4:
        options["bounding_box_regression"] = r.bool()
        options["bbr_lambda"] = r.float()
    if not windows:
        raise _FormatError("an MMOD detector without detector windows")
    return MmodOptions(windows=tuple(windows), **options)  # type: ignore[arg-type]


def _loss(r: _Reader) -> tuple[str, MmodOptions | None]:
    if (version := r.int()) != 1:
        raise _FormatError(f"unknown add_loss_layer version {version}")
    name = r.string()
    if name == "loss_metric_2":
        r.float(), r.float()  # margin, distance threshold: training only
    elif name == "loss_metric_":
        pass
    elif name == "loss_mmod_":
        return name, _mmod_options(r)
    else:
        raise _FormatError(f"loss layer {name!r} is not supported (only loss_metric and loss_mmod)")
    return name, None


# --- the network -------------------------------------------------------------------------------


def read_network(path: str | Path) -> DlibNetwork:
    """Read a dlib ``loss_metric`` or ``loss_mmod`` network file (such as
    ``dlib_face_recognition_resnet_model_v1.dat`` or ``mmod_human_face_detector.dat``).

    Raises :class:`~faceshot.errors.ModelError` naming the file and the byte where reading failed
    when the file is missing, truncated, damaged, or holds a layer type this reader does not know.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read dlib network {path}: {exc.strerror or exc}") from None
    r = _Reader(data)
    try:
        network = _read(r)
        if r.pos != len(data):
            raise _FormatError(f"{len(data) - r.pos} bytes follow the network")
    except (_FormatError, ValueError, IndexError) as exc:  # the last two: damage this reader did not foresee
        raise ModelError(f"{path} is not a dlib network file faceshot can read: {exc} (at byte {r.pos})") from None
    return network


def _read(r: _Reader) -> DlibNetwork:
    loss, mmod = _loss(r)
    # One version number per wrapper, outermost first, until the input layer's name.
    wrappers: list[int] = []
    while True:
        version = r.int()
        if r.peek_string() is not None:
            wrappers.append(version)
            break
        if version not in (1, 2):
            raise _FormatError(f"unexpected layer version {version}")
        wrappers.append(version)
        if len(wrappers) > 100_000:
            raise _FormatError("no input layer found")
    if wrappers[-1] not in (2, 3):
        raise _FormatError("the innermost layer is not a computational layer")
    input_layer = _input(r, r.string())
    layers: list[Layer] = []
    for depth, version in enumerate(reversed(wrappers)):
        if version == 1 and depth > 0:  # a tag or skip: nothing but its version was written
            layers.append(Wrapper())
            continue
        layers.append(_details(r))
        _bookkeeping(r, version, holds_input=depth == 0)
    return DlibNetwork(loss=loss, input=input_layer, layers=tuple(layers), mmod=mmod)
