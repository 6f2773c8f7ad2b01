"""What faceshot's ONNX models share: writing graphs, caching conversions, running sessions.

Used by the converted dlib networks (:mod:`faceshot.embed.dlib_onnx`, the face ResNet;
:mod:`faceshot.detect.mmod_onnx`, the CNN face detector) and by trained models
(:mod:`faceshot.train.export`, :mod:`faceshot.embed.onnx_model`).

- :class:`Graph` collects nodes and weights and tracks each value's shape; :func:`conv` writes a
  convolution with the affine layer that follows it folded in; :func:`finish` makes the checked model.
- :func:`cached_conversion` keeps a conversion in ``$XDG_CACHE_HOME/faceshot`` (``~/.cache/faceshot``),
  keyed by the source file's digest, written atomically, rebuilt when damaged or out of date.
- :func:`session` starts (once per process, model and thread count) an onnxruntime session;
  :func:`new_session` is the one place every faceshot session is made, with the process's
  thread budget (:func:`thread_budget`) unless told otherwise.

**Threads.** An onnxruntime session is safe to run from several threads at once, so one session per
model is shared by every thread of a process. Its intra-op threads are the process's *thread
budget*: every core the process may run on, unless a bulk pool set it (``set_thread_budget``) to
its share, ``max(1, cores // workers)``, so that N worker processes do not start N × cores threads.

Needs ``pip install onnxruntime onnx`` (not torch).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from faceshot.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from faceshot.embed.dlib_format import Affine, Conv

__all__ = [
    "OPSET",
    "Graph",
    "pooled",
    "conv",
    "finish",
    "cache_dir",
    "cached_conversion",
    "write_atomically",
    "onnx_modules",
    "onnxruntime_module",
    "available_cores",
    "GuardedSession",
    "thread_budget",
    "set_thread_budget",
    "new_session",
    "session",
]

log = logging.getLogger(__name__)

OPSET = 17
INSTALL_HINT = "pip install onnxruntime onnx"


# --- writing graphs ----------------------------------------------------------------------------


class Graph:
    """Collects ONNX nodes and initializers, and tracks each value's (channels, rows, columns)."""

    def __init__(self, helper: Any, numpy_helper: Any) -> None:
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.shapes: dict[str, tuple[int, int | None, int | None]] = {}
        self._count = 0

    def constant(self, name: str, array: np.ndarray) -> str:
        name = f"{name}_{len(self.initializers)}"
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], shape: tuple[int, int | None, int | None] | None = None, **attrs: Any) -> str:
        self._count += 1
        output = f"{op.lower()}_{self._count}"
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attrs))
        if shape is not None:
            self.shapes[output] = shape
        return output


def pooled(size: int | None, window: int, stride: int, padding: int) -> int | None:
    # dlib and ONNX (floor mode) agree: 1 + (size + 2·padding − window) / stride, rounded down.
    # None: a size known only when the graph runs (an image of any size).
    return None if size is None else 1 + (size + 2 * padding - window) // stride


def conv(g: Graph, x: str, layer: Conv, affine: Affine | None) -> str:
    """A convolution of ``x``, with the affine layer that follows it (if any) folded into its weights."""
    filters = layer.filters.astype(np.float64)
    bias = np.zeros(filters.shape[0]) if layer.bias is None else layer.bias.astype(np.float64)
    if affine is not None:  # fold gamma·(conv + b) + beta into the convolution
        filters = filters * affine.gamma.astype(np.float64)[:, None, None, None]
        bias = bias * affine.gamma + affine.beta
    c, h, w = g.shapes[x]
    kh, kw = layer.filters.shape[2:]
    (sy, sx), (py, px) = layer.stride, layer.padding
    shape = (filters.shape[0], pooled(h, kh, sy, py), pooled(w, kw, sx, px))
    return g.node(
        "Conv",
        [x, g.constant("W", filters.astype(np.float32)), g.constant("B", bias.astype(np.float32))],
        shape,
        kernel_shape=[kh, kw],
        strides=[sy, sx],
        pads=[py, px, py, px],
    )


def finish(g: Graph, name: str, inputs: list[Any], outputs: list[Any], version: str, source: Path) -> Any:
    """The checked ``onnx.ModelProto`` of ``g``'s nodes, made by faceshot's converter ``version`` from ``source``."""
    onnx, helper, _ = onnx_modules()
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.initializers)
    model = helper.make_model(
        graph,
        producer_name="faceshot",
        producer_version=version,
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=f"Converted by faceshot from dlib's {source.name}",
    )
    model.ir_version = 8  # the oldest IR that carries opset 17: readable by older onnxruntimes
    onnx.checker.check_model(model)
    return model


# --- the cache ---------------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/faceshot``, or ``~/.cache/faceshot``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "faceshot"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def graph_digest(model: Any) -> str:
    return hashlib.sha256(model.graph.SerializeToString(deterministic=True)).hexdigest()


def stamp(model: Any, source_sha256: str, version: str) -> None:
    from onnx import helper

    helper.set_model_props(
        model,
        {
            "faceshot.converter": version,
            "faceshot.source_sha256": source_sha256,
            "faceshot.graphfile_sha256": graph_digest(model),
        },
    )


def is_valid(data: bytes, source_sha256: str, version: str) -> bool:
    """Whether ``data`` is a model this converter (``version``) made from that source, undamaged."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # protobuf raises its own DecodeError, among others
        return False
    props = {p.key: p.value for p in model.metadata_props}
    return (
        props.get("faceshot.converter") == version
        and props.get("faceshot.source_sha256") == source_sha256
        and props.get("faceshot.graphfile_sha256") == graph_digest(model)
    )


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes it private; it is a cache of public weights
        # Readers see the old file or the whole new one, never a half-written one.
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def cached_conversion(
    source: Path, directory: str | Path | None, prefix: str, conversion: Callable[[Path], Any], version: str
) -> bytes:
    """The serialized ONNX model ``conversion(source)`` made, cached as ``<prefix>_<sha256>.onnx``.

    The cached file is used when it records ``version`` and ``source``'s digest and its graph is
    undamaged; otherwise the model is converted again and the file replaced atomically. If the
    directory (default: :func:`cache_dir`) cannot be written, the model is used from memory.
    """
    onnx_modules()
    try:
        source_sha256 = file_sha256(source)
    except OSError as exc:
        raise ModelError(f"cannot read dlib network {source}: {exc.strerror or exc}") from None
    path = (cache_dir() if directory is None else Path(directory)) / f"{prefix}_{source_sha256[:16]}.onnx"
    try:
        data = path.read_bytes()
    except OSError:
        data = None
    if data is not None:
        if is_valid(data, source_sha256, version):
            log.debug("loaded the converted model from %s", path)
            return data
        log.warning("the cached model %s is damaged or out of date; converting again", path)

    log.info("converting %s to ONNX (once; cached in %s)", source, path)
    model = conversion(source)
    stamp(model, source_sha256, version)
    data = model.SerializeToString()
    try:
        write_atomically(path, data)
    except OSError as exc:
        log.warning("cannot cache the converted model in %s (%s); using it from memory", path, exc)
    return data


# --- running ---------------------------------------------------------------------------------


def onnx_modules() -> tuple[Any, Any, Any]:
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:
        raise ModelError(f"faceshot's ONNX models need the onnx package ({exc}); install it with: {INSTALL_HINT}") from None
    return onnx, helper, numpy_helper


def onnxruntime_module() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelError(f"faceshot's ONNX models need onnxruntime ({exc}); install it with: {INSTALL_HINT}") from None
    return onnxruntime


class GuardedSession:
    """An onnxruntime session whose failures while running raise :class:`ModelError`.

    onnxruntime raises its own exception types (``Fail``, ``InvalidArgument``,
    ``RuntimeException``: not faceshot's, and not documented as stable); ``what`` names the model
    in the message.
    """

    def __init__(self, session: Any, what: str) -> None:
        self.session = session
        self.what = what

    def run(self, outputs: Any, feeds: dict[str, Any]) -> Any:
        try:
            return self.session.run(outputs, feeds)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(f"onnxruntime failed running {self.what}: {first}") from None

    def __getattr__(self, name: str) -> Any:  # get_inputs(), get_outputs(), ...
        return getattr(self.session, name)


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_budget: int | None = None


def thread_budget() -> int:
    """Intra-op threads for a session made without an explicit count: the budget a bulk pool set in
    this process (:func:`set_thread_budget`), else every core the process may run on."""
    return _budget or available_cores()


def set_thread_budget(threads: int | None) -> None:
    """Set this process's thread budget (``None``: every core again). Sessions already made keep theirs."""
    global _budget
    if threads is not None and threads < 1:
        raise ConfigError(f"a thread budget is at least 1, got {threads}")
    _budget = threads


def new_session(data: bytes, threads: int | None = None, *, spin: bool = False, what: str = "the model") -> Any:
    """A CPU onnxruntime session of the serialized model ``data``: the one factory faceshot uses.

    ``threads``: intra-op threads (default :func:`thread_budget`); inter-op threads are 1.
    Raises :class:`ModelError` naming ``what`` when onnxruntime cannot load the model; the
    session returned (a :class:`GuardedSession`) raises it too when a run fails.
    """
    ort = onnxruntime_module()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or thread_budget()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning worker threads wait faster but burn their core meanwhile: on a machine busy
    # with other work, measured, they halved the speed of 2 threads on 2 cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    try:
        return GuardedSession(ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]), what)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"onnxruntime cannot load {what}: {exc}") from None


_sessions: dict[tuple[int, str, str, str, int, bool], Any] = {}
_sessions_lock = threading.Lock()


def session(
    model: Callable[[Path | None, Path | None], bytes],
    source: Path | None,
    directory: Path | None,
    threads: int | None,
    spin: bool = False,
) -> Any:
    """The onnxruntime session of the serialized model ``model(source, directory)`` returns.

    ``threads``: intra-op threads, ``None`` for the process's :func:`thread_budget`.
    """
    threads = threads or thread_budget()
    # One session per model and thread count per process, shared by every user (sessions are
    # thread-safe to run). The process id is part of the key: a child made by fork() must not use
    # its parent's session, whose worker threads did not survive the fork.
    key = (os.getpid(), f"{model.__module__}.{model.__qualname__}", str(source), str(directory), threads, spin)
    with _sessions_lock:
        running = _sessions.get(key)
        if running is None:
            running = new_session(model(source, directory), threads, spin=spin, what="the converted dlib model")
            _sessions[key] = running
    return running


def sessions_started() -> int:
    """How many shared sessions this process has started (a test that nothing was loaded reads it)."""
    pid = os.getpid()
    with _sessions_lock:
        return sum(1 for key in _sessions if key[0] == pid)
