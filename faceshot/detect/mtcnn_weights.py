"""MTCNN's weights: read from facenet-pytorch's ``.pt`` files without torch, converted once to ONNX.

The three networks of MTCNN (Zhang et al. 2016) ship inside the ``facenet-pytorch==2.6.0`` wheel as
``facenet_pytorch/data/{pnet,rnet,onet}.pt`` (MIT licence): torch ``state_dict``\\ s of float32
tensors. That package pins old torch, numpy and Pillow, so faceshot reads the files itself:

- :func:`read_state_dict` unpickles a ``.pt`` file (torch's legacy format, the one these files
  use, or its zip format) with a restricted unpickler that rebuilds tensors as numpy arrays and
  refuses every other global a pickle asks for (a ``.pt`` file is a pickle: loading one with plain
  ``pickle`` runs whatever code it names);
- :func:`convert` writes each network as an ONNX graph (P-Net fully convolutional, any H×W;
  R-Net 24×24; O-Net 48×48), stamped with the digest of its ``.pt`` file;
- :func:`install` does both for a wheel and writes ``mtcnn_<net>_<sha256[:16]>.onnx`` into the
  cache (``faceshot models fetch mtcnn``); :func:`onnx_model` reads one back, checking its stamp.

The weights accepted are exactly facenet-pytorch 2.6.0's, checked by SHA-256 (:data:`WEIGHTS`).

Graph inputs: ``image``: ``float32 [N, 3, H, W]``, RGB planes of ``(pixel − 127.5) / 128``.
Outputs (facenet-pytorch's order): P-Net ``regression [N, 4, h, w]``, ``probability [N, 2, h, w]``
(softmax over background/face; ``h = ceil((H − 2) / 2) − 4``); R-Net ``regression [N, 4]``,
``probability [N, 2]``; O-Net ``regression [N, 4]``, ``landmarks [N, 10]`` (five x then five y,
as fractions of the box), ``probability [N, 2]``.

Needs ``pip install onnxruntime onnx`` (not torch).
"""

from __future__ import annotations

import collections
import hashlib
import io
import logging
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from faceshot.errors import ModelError
from faceshot.onnx_graphs import Graph, cache_dir, is_valid, onnx_modules, stamp, write_atomically, OPSET

__all__ = ["WEIGHTS", "NETWORKS", "FETCH_HINT", "read_state_dict", "convert", "install", "onnx_model", "model_path"]

log = logging.getLogger(__name__)

#: SHA-256 of facenet-pytorch 2.6.0's ``facenet_pytorch/data/<net>.pt``, by network.
WEIGHTS = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
NETWORKS = tuple(WEIGHTS)
FETCH_HINT = "faceshot models fetch mtcnn"
# Bump when the graphs this module writes change: files of another version are refused.
CONVERTER_VERSION = "mtcnn-1"

# --- reading torch's .pt files without torch ----------------------------------------------------

# torch's storage classes, by the name a pickle uses, and the element type each holds.
_STORAGES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage:
    """A torch storage named by a pickle: its element type, and its data once read."""

    def __init__(self, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)
        self.data: np.ndarray | None = None


class _Tensor:
    """A tensor waiting for its storage's data (legacy files store the data after the pickle)."""

    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise ModelError("a tensor's storage is missing from the file")
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1 if all(self.size) else 0
        if self.offset < 0 or needed > data.size or any(s < 0 for s in self.stride):
            raise ModelError(f"a tensor of shape {self.size} reaches outside its storage of {data.size} elements")
        strides = tuple(s * data.itemsize for s in self.stride)
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.size, strides=strides)
        return np.array(view)  # a copy: the result owns its memory


def _rebuild_tensor_v2(storage: Any, offset: int, size: Any, stride: Any, *_: Any) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor must be built on a storage")
    return _Tensor(storage, int(offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


def _rebuild_parameter(tensor: Any, *_: Any) -> Any:
    return tensor


class _StorageType:
    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a torch state dict: ordered dicts of tensors, and nothing else.

    ``find_class`` allows only ``collections.OrderedDict``, torch's tensor rebuild functions and
    storage classes (replaced by numpy-backed stand-ins); any other global raises
    :class:`pickle.UnpicklingError` before anything is called.
    """

    def __init__(self, file: Any, storages: dict[str, _Storage], load: Any) -> None:
        super().__init__(file)
        self._storages = storages
        self._load = load

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGES:
            return _StorageType(_STORAGES[name])
        raise pickle.UnpicklingError(f"refusing {module}.{name}: a weights file may only hold tensors")

    def persistent_load(self, pid: Any) -> Any:
        # ('storage', storage type, key, location, element count[, view metadata])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        key = str(pid[2])
        if key not in self._storages:
            self._storages[key] = _Storage(pid[1].dtype)
            self._load(key, self._storages[key], int(pid[4]))
        return self._storages[key]


def read_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a torch ``state_dict`` file's bytes, as ``{name: numpy array}``, without torch.

    Reads torch's legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``, what
    facenet-pytorch's files are) and its zip format (``archive/data.pkl`` + ``archive/data/<key>``).
    Raises :class:`ModelError` for anything else, and for a pickle asking for any global but an
    ordered dict, a tensor or a storage (see :class:`_RestrictedUnpickler`).
    """
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            state = _read_zip(data)
        else:
            state = _read_legacy(data)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, AttributeError, IndexError,
            struct.error, zipfile.BadZipFile) as exc:
        raise ModelError(f"not a torch weights file faceshot can read: {exc}") from None
    if not isinstance(state, dict):
        raise ModelError(f"a torch weights file should hold a dict of tensors, not {type(state).__name__}")
    arrays = {}
    for name, value in state.items():
        if not isinstance(value, _Tensor):
            raise ModelError(f"{name!r} in the weights file is not a tensor")
        arrays[str(name)] = value.array()
    return arrays


def _read_zip(data: bytes) -> Any:
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise ValueError("the archive has no data.pkl")
    root = pickles[0][: -len("data.pkl")]

    def load(key: str, storage: _Storage, count: int) -> None:
        raw = archive.read(f"{root}data/{key}")
        storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"), count=count).astype(storage.dtype)

    return _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), {}, load).load()


def _read_legacy(data: bytes) -> Any:
    stream = io.BytesIO(data)
    header = _RestrictedUnpickler(stream, {}, None)
    if header.load() != _LEGACY_MAGIC:
        raise ValueError("no torch magic number")
    header.load()  # protocol version
    header.load()  # system info (endianness, type sizes)
    storages: dict[str, _Storage] = {}
    counts: dict[str, int] = {}
    state = _RestrictedUnpickler(stream, storages, lambda key, storage, count: counts.__setitem__(key, count)).load()
    keys = _RestrictedUnpickler(stream, {}, None).load()
    # After the pickles, each storage in the order of ``keys``: its element count (int64), then its data.
    for key in keys:
        storage = storages[str(key)]
        (count,) = struct.unpack("<q", stream.read(8))
        if count != counts[str(key)]:
            raise ValueError(f"storage {key} holds {count} elements, its tensor says {counts[str(key)]}")
        raw = stream.read(count * storage.dtype.itemsize)
        if len(raw) != count * storage.dtype.itemsize:
            raise ValueError("the file ends inside a storage")
        storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<")).astype(storage.dtype)
    return state


# --- the ONNX graphs ----------------------------------------------------------------------------


def _conv(g: Graph, x: str, w: dict[str, np.ndarray], name: str) -> str:
    weight = w[f"{name}.weight"]
    return g.node("Conv", [x, g.constant("W", weight), g.constant("B", w[f"{name}.bias"])],
                  kernel_shape=list(weight.shape[2:]), strides=[1, 1])


def _prelu(g: Graph, x: str, w: dict[str, np.ndarray], name: str, spatial: bool = True) -> str:
    slope = w[f"{name}.weight"]
    return g.node("PRelu", [x, g.constant("slope", slope.reshape(-1, 1, 1) if spatial else slope)])


def _pool(g: Graph, x: str, size: int, stride: int) -> str:
    # torch's MaxPool2d(ceil_mode=True), as facenet-pytorch's networks use.
    return g.node("MaxPool", [x], kernel_shape=[size, size], strides=[stride, stride], ceil_mode=1)


def _dense(g: Graph, x: str, w: dict[str, np.ndarray], name: str) -> str:
    return g.node("Gemm", [x, g.constant("W", w[f"{name}.weight"]), g.constant("B", w[f"{name}.bias"])], transB=1)


def _softmax(g: Graph, x: str) -> str:
    return g.node("Softmax", [x], axis=1)


def _flatten_transposed(g: Graph, x: str) -> str:
    # facenet-pytorch permutes (N, C, H, W) to (N, W, H, C) before its dense layers (the weights come
    # from Caffe, whose images were transposed), then flattens.
    return g.node("Flatten", [g.node("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)


def convert(network: str, weights: dict[str, np.ndarray], source_sha256: str) -> Any:
    """The checked ``onnx.ModelProto`` of MTCNN's ``network`` (``pnet``, ``rnet`` or ``onet``).

    ``weights`` is its state dict (:func:`read_state_dict`); the model is stamped with
    ``source_sha256``, the digest of the ``.pt`` file. Raises :class:`ModelError` when a weight is
    missing or of the wrong shape.
    """
    onnx, helper, numpy_helper = onnx_modules()
    g = Graph(helper, numpy_helper)
    w = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    x = "image"
    try:
        if network == "pnet":
            x = _pool(g, _prelu(g, _conv(g, x, w, "conv1"), w, "prelu1"), 2, 2)
            x = _prelu(g, _conv(g, x, w, "conv2"), w, "prelu2")
            x = _prelu(g, _conv(g, x, w, "conv3"), w, "prelu3")
            heads = [("regression", _conv(g, x, w, "conv4_2")), ("probability", _softmax(g, _conv(g, x, w, "conv4_1")))]
            size: list[Any] = ["H", "W"]
            out_dims: dict[str, list[Any]] = {"regression": ["N", 4, "h", "w"], "probability": ["N", 2, "h", "w"]}
        elif network == "rnet":
            x = _pool(g, _prelu(g, _conv(g, x, w, "conv1"), w, "prelu1"), 3, 2)
            x = _pool(g, _prelu(g, _conv(g, x, w, "conv2"), w, "prelu2"), 3, 2)
            x = _prelu(g, _conv(g, x, w, "conv3"), w, "prelu3")
            x = _prelu(g, _dense(g, _flatten_transposed(g, x), w, "dense4"), w, "prelu4", spatial=False)
            heads = [("regression", _dense(g, x, w, "dense5_2")), ("probability", _softmax(g, _dense(g, x, w, "dense5_1")))]
            size = [24, 24]
            out_dims = {"regression": ["N", 4], "probability": ["N", 2]}
        elif network == "onet":
            x = _pool(g, _prelu(g, _conv(g, x, w, "conv1"), w, "prelu1"), 3, 2)
            x = _pool(g, _prelu(g, _conv(g, x, w, "conv2"), w, "prelu2"), 3, 2)
            x = _pool(g, _prelu(g, _conv(g, x, w, "conv3"), w, "prelu3"), 2, 2)
            x = _prelu(g, _conv(g, x, w, "conv4"), w, "prelu4")
            x = _prelu(g, _dense(g, _flatten_transposed(g, x), w, "dense5"), w, "prelu5", spatial=False)
            heads = [
                ("regression", _dense(g, x, w, "dense6_2")),
                ("landmarks", _dense(g, x, w, "dense6_3")),
                ("probability", _softmax(g, _dense(g, x, w, "dense6_1"))),
            ]
            size = [48, 48]
            out_dims = {"regression": ["N", 4], "landmarks": ["N", 10], "probability": ["N", 2]}
        else:
            raise ModelError(f"unknown MTCNN network {network!r}; choose one of: {', '.join(NETWORKS)}")
    except KeyError as exc:
        raise ModelError(f"MTCNN {network}: weight {exc} is missing") from None
    for name, value in heads:
        g.nodes.append(helper.make_node("Identity", [value], [name], name=f"out_{name}"))
    graph = helper.make_graph(
        g.nodes, f"mtcnn_{network}",
        [helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, ["N", 3, *size])],
        [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, out_dims[name]) for name, _ in heads],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, producer_name="faceshot", producer_version=CONVERTER_VERSION,
                              opset_imports=[helper.make_opsetid("", OPSET)],
                              doc_string=f"MTCNN {network}, converted by faceshot from facenet-pytorch 2.6.0's {network}.pt (MIT)")
    model.ir_version = 8
    try:
        onnx.checker.check_model(model)
        onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:  # the weights do not fit the topology
        raise ModelError(f"MTCNN {network}: the weights do not fit the network: {str(exc).splitlines()[0]}") from None
    stamp(model, source_sha256, CONVERTER_VERSION)
    return model


# --- the cache ----------------------------------------------------------------------------------


def model_path(network: str, directory: str | Path | None = None) -> Path:
    """Where the converted ``network`` is kept: ``<cache>/mtcnn_<network>_<sha256[:16]>.onnx``."""
    return (cache_dir() if directory is None else Path(directory)) / f"mtcnn_{network}_{WEIGHTS[network][:16]}.onnx"


def install(wheel: str | Path, directory: str | Path | None = None) -> list[Path]:
    """Read MTCNN's weights from facenet-pytorch 2.6.0's ``wheel``, convert them and write the three
    graphs into ``directory`` (default: the cache, :func:`faceshot.onnx_graphs.cache_dir`).

    Returns the paths written. Raises :class:`ModelError` when the wheel cannot be read, lacks a
    network, or holds weights other than 2.6.0's (SHA-256, :data:`WEIGHTS`).
    """
    try:
        with zipfile.ZipFile(wheel) as archive:
            files = {net: archive.read(f"facenet_pytorch/data/{net}.pt") for net in NETWORKS}
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"cannot read MTCNN's weights from {wheel} (facenet-pytorch 2.6.0's wheel): {exc}") from None
    written = []
    for net, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != WEIGHTS[net]:
            raise ModelError(f"{wheel}: {net}.pt is not facenet-pytorch 2.6.0's (SHA-256 {digest[:16]}…, "
                             f"expected {WEIGHTS[net][:16]}…)")
        model = convert(net, read_state_dict(data), digest)
        path = model_path(net, directory)
        try:
            write_atomically(path, model.SerializeToString())
        except OSError as exc:
            raise ModelError(f"cannot write {path}: {exc.strerror or exc}") from None
        log.info("wrote %s", path)
        written.append(path)
    return written


def onnx_model(network: str, directory: str | Path | None = None) -> bytes:
    """The serialized ONNX graph of ``network`` from the cache, checked against its stamp.

    Raises :class:`ModelError` naming the command that makes it when it is missing, damaged or
    from another converter version.
    """
    path = model_path(network, directory)
    try:
        data = path.read_bytes()
    except OSError:
        raise ModelError(f"MTCNN's {network} is not in {path.parent}; run: {FETCH_HINT}"
                         + ("" if directory is None else f" --cache-dir {directory}")) from None
    if not is_valid(data, WEIGHTS[network], CONVERTER_VERSION):
        raise ModelError(f"{path} is damaged or from another faceshot version; run again: {FETCH_HINT}"
                         + ("" if directory is None else f" --cache-dir {directory}"))
    return data
