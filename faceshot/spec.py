"""The engine description (:class:`EngineSpec`) and its text grammar, version 1.

Every path that detects or embeds — single calls, bulk worker processes, clustering, evaluation,
galleries — builds its :class:`~faceshot.engine.Engine` from one ``EngineSpec``: the detector with
its options, the aligner, the embedder (a name or a model file) and the pixel limit. It is a frozen,
picklable value, so it travels to worker processes whole, and :meth:`EngineSpec.build` builds each
description once per process.

**The grammar** (``GRAMMAR_VERSION = 1``), used by ``--detector``/``--embedder``, the
``FACESHOT_DETECTOR``/``FACESHOT_EMBEDDER`` variables and gallery settings::

    detector := stage ( ">" stage )*      a fallback chain: tried in order until one finds a face
    embedder := stage                     aligner := stage
    stage    := name [ ":" option ( "," option )* ]
    name     := a registered backend (faceshot.detect.detectors, faceshot.embed.embedders,
                faceshot.align.aligners), or for an embedder the path of a model file ending in .onnx
    option   := key "=" value             the keyword options of that backend
    value    := none | true | false | an integer | a decimal | text (no , > = : inside)

Examples: ``hog``, ``hog:upsample=1``, ``cnn-onnx:upsample=0,large_face=none``, ``hog>cnn-onnx``,
``dlib-resnet-onnx:threads=2``, ``./model.onnx``, ``models/faces.onnx:batch_size=64``. Spaces
around the separators are ignored. An unknown backend or option raises
:class:`~faceshot.errors.ConfigError` listing the ones that exist. ``str(spec)`` writes a stage
back in canonical form (options sorted), which parses to the same value.

**Resolution** (:func:`resolve_spec`, :func:`open_engine`): each part comes from the first of the
command-line flag, the environment (``FACESHOT_DETECTOR``, ``FACESHOT_EMBEDDER``,
``FACESHOT_MAX_PIXELS``), the gallery's settings, the package default. A gallery pins its vector
space (embedder and aligner); the detector and pixel limit it stores are only defaults.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Union

import numpy as np

from faceshot.align import Aligner, aligners, create_aligner
from faceshot.detect import Detector, create_detector, detectors
from faceshot.embed import DEFAULT_EMBEDDER, Embedder, create_embedder, embedders
from faceshot.errors import ConfigError
from faceshot.io import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from faceshot.engine import Engine

__all__ = [
    "GRAMMAR_VERSION",
    "DEFAULT_DETECTOR",
    "ENV_DETECTOR",
    "ENV_EMBEDDER",
    "ENV_MAX_PIXELS",
    "EngineSpec",
    "Stage",
    "StoredEngine",
    "parse_detector",
    "parse_stage",
    "build_detector",
    "build_embedder",
    "build_aligner",
    "embedder_for_space",
    "resolve_spec",
    "stored_engine",
    "open_engine",
    "record_engine",
]

GRAMMAR_VERSION = 1
#: HOG, and dlib's CNN (run by onnxruntime) only on photos where HOG finds nothing: chosen from the
#: measurements in BENCHMARKS.md ("Choosing the default detector"). The CNN's faces count from
#: confidence 0.5 there: on the 36 LFW photos where HOG finds no face, the CNN's are 0.80-1.13;
#: its one false face among the non-face photos (a cat) is 0.23, and a photo stored sideways gave
#: 0.44 (obama.jpg turned by 90°; the chain refuses those anyway, see FallbackDetector).
DEFAULT_DETECTOR = "hog>cnn-onnx:confidence=0.5"
ENV_DETECTOR = "FACESHOT_DETECTOR"
ENV_EMBEDDER = "FACESHOT_EMBEDDER"
ENV_MAX_PIXELS = "FACESHOT_MAX_PIXELS"
#: Gallery settings read by :func:`stored_engine` (the space itself is the gallery's ``embedder``).
SETTING_DETECTOR = "engine.detector"
SETTING_MAX_PIXELS = "engine.max_pixels"
SETTING_MODEL_FILE = "engine.model_file"
#: The embedder that opens a gallery of each space when none is asked for: dlib's ResNet run by
#: onnxruntime gives dlib's own vectors (cosine >= 0.9999), about 12 times faster.
SPACE_DEFAULTS = {"dlib-resnet": "dlib-resnet-onnx", "dlib-resnet-single": "dlib-resnet-onnx-single"}
#: The options a model file (``.onnx`` embedder) takes: see ``OnnxModelEmbedder`` and ``CardEmbedder``.
MODEL_FILE_OPTIONS = ("batch_size", "card", "threads")

_FORBIDDEN = re.compile(r"[,>=:]")
_MODEL_FILE = re.compile(r"^(.*?\.onnx)(?::(.*))?$", re.IGNORECASE | re.DOTALL)

Value = Union[None, bool, int, float, str]


# --- the grammar -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One backend and its options: ``name:key=value,...``."""

    name: str
    options: tuple[tuple[str, Value], ...] = ()

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return self.name + ":" + ",".join(f"{key}={_format(value)}" for key, value in self.options)

    def kwargs(self) -> dict[str, Value]:
        return dict(self.options)


def _value(text: str) -> Value:
    lowered = text.lower()
    if lowered == "none":
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _format(value: Value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_stage(text: str, kind: str) -> Stage:
    """Parse ``name[:key=value,...]`` for a ``kind`` (``detector``, ``embedder`` or ``aligner``).

    Raises :class:`ConfigError` for an unknown backend (listing the registered ones) or option
    (listing that backend's options), and for malformed text.
    """
    registry = {"detector": detectors, "embedder": embedders, "aligner": aligners}[kind]
    text = text.strip()
    match = _MODEL_FILE.match(text) if kind == "embedder" else None
    if match:
        name, rest = match.group(1).strip(), match.group(2)
    else:
        name, _, rest = text.partition(":")
        name = name.strip()
        rest = rest if ":" in text else None
    if not name:
        raise ConfigError(f"{kind} {text!r}: no backend named; choose one of: {', '.join(registry.names())}")
    options: dict[str, Value] = {}
    if rest is not None:
        for item in rest.split(","):
            key, equals, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not equals or not key or not value or _FORBIDDEN.search(value):
                raise ConfigError(f"{kind} {text!r}: options are written key=value, separated by commas; got {item.strip()!r}")
            if key in options:
                raise ConfigError(f"{kind} {text!r}: option {key!r} is given twice")
            options[key] = _value(value)
    if match:
        unknown = sorted(set(options) - set(MODEL_FILE_OPTIONS))
        if unknown:
            raise ConfigError(
                f"model file {name!r} has no option {', '.join(repr(u) for u in unknown)}; "
                f"its options: {', '.join(MODEL_FILE_OPTIONS)}"
            )
    else:
        registry.check(name, options)  # an unknown name or option raises and lists the valid ones
    return Stage(name, tuple(sorted(options.items())))


def parse_detector(text: str) -> tuple[Stage, ...]:
    """The stages of a detector text: one, or several separated by ``>`` (a fallback chain)."""
    if not text.strip():
        raise ConfigError(f"empty detector; choose one of: {', '.join(detectors.names())}")
    return tuple(parse_stage(part, "detector") for part in text.split(">"))


def _build(stage: Stage, kind: str, factory: Any) -> Any:
    try:
        return factory(stage.name, **stage.kwargs())
    except (TypeError, ValueError) as exc:  # an option of the wrong type or out of range
        raise ConfigError(f"{kind} {str(stage)!r}: {exc}") from None


def build_detector(text: str) -> Detector:
    """The detector a detector text describes (a chain becomes a :class:`FallbackDetector`)."""
    stages = parse_detector(text)
    members = [_build(stage, "detector", create_detector) for stage in stages]
    if len(members) == 1:
        return members[0]
    from faceshot.detect.chain import FallbackDetector

    return FallbackDetector(members)


def build_embedder(text: str) -> Embedder:
    """The embedder an embedder text describes (a registered name or a model file)."""
    return _build(parse_stage(text, "embedder"), "embedder", create_embedder)


def build_aligner(text: str) -> Aligner:
    return _build(parse_stage(text, "aligner"), "aligner", create_aligner)


# --- the description -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineSpec:
    """What an :class:`~faceshot.engine.Engine` is made of: a frozen, picklable, hashable value.

    ``detector``: a detector text (see the module's grammar; default :data:`DEFAULT_DETECTOR`) or a
    :class:`~faceshot.detect.Detector` instance (picklable, to reach worker processes).
    ``embedder``: an embedder text — a registered name or the path of a model file from
    ``faceshot train`` — or an :class:`~faceshot.embed.Embedder` instance.
    ``aligner``: an aligner text or instance; ``None`` takes the one the embedder was trained with.
    ``max_pixels``: images with more pixels are refused before decoding
    (:class:`~faceshot.errors.ImageTooLargeError`).

    Texts are checked and written in canonical form when the spec is made (:class:`ConfigError`).
    """

    detector: str | Detector = DEFAULT_DETECTOR
    embedder: str | Embedder = DEFAULT_EMBEDDER
    aligner: str | Aligner | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if isinstance(self.detector, str):
            object.__setattr__(self, "detector", ">".join(str(s) for s in parse_detector(self.detector)))
        elif not isinstance(self.detector, Detector):
            raise ConfigError(f"detector must be a text or a Detector, got {type(self.detector).__name__}")
        if isinstance(self.embedder, str):
            object.__setattr__(self, "embedder", str(parse_stage(self.embedder, "embedder")))
        elif not isinstance(self.embedder, Embedder):
            raise ConfigError(f"embedder must be a text or an Embedder, got {type(self.embedder).__name__}")
        if isinstance(self.aligner, str):
            object.__setattr__(self, "aligner", str(parse_stage(self.aligner, "aligner")))
        if isinstance(self.max_pixels, bool) or not isinstance(self.max_pixels, (int, np.integer)) or self.max_pixels < 1:
            raise ConfigError(f"max_pixels must be a positive whole number of pixels, got {self.max_pixels!r}")
        object.__setattr__(self, "max_pixels", int(self.max_pixels))

    def __str__(self) -> str:
        parts = [f"detector={_describe(self.detector)}", f"embedder={_describe(self.embedder)}"]
        if self.aligner is not None:
            parts.append(f"aligner={_describe(self.aligner)}")
        return " ".join(parts + [f"max_pixels={self.max_pixels}"])

    @property
    def is_text(self) -> bool:
        """Whether every part is text (the description can be written down, and is cached when built)."""
        return all(part is None or isinstance(part, str) for part in (self.detector, self.embedder, self.aligner))

    @property
    def detector_text(self) -> str:
        """The detector as text (an instance: its class and name), for reports."""
        return _describe(self.detector)

    @property
    def embedder_text(self) -> str:
        """The embedder as text (an instance: its class and name), for reports."""
        return _describe(self.embedder)

    def replace(self, **changes: Any) -> "EngineSpec":
        """A copy with some parts changed (``spec.replace(detector="cnn-onnx")``)."""
        return dataclasses.replace(self, **changes)

    def build(self) -> "Engine":
        """The engine this describes, built once per process and shared (models load on first use).

        A description holding instances (a :class:`Detector`, an :class:`Embedder`) builds a new
        engine around those same instances each time: only texts are kept in the cache, which
        would otherwise grow with every instance ever passed.
        """
        if not self.is_text:
            from faceshot.engine import Engine

            return Engine.from_spec(self)
        key = (os.getpid(), self)
        with _engines_lock:
            engine = _engines.get(key)
        if engine is None:
            from faceshot.engine import Engine

            engine = Engine.from_spec(self)
            with _engines_lock:
                engine = _engines.setdefault(key, engine)
        return engine


def _describe(part: Any) -> str:
    return part if isinstance(part, str) else f"<{type(part).__name__} {getattr(part, 'name', '?')}>"


# Built engines, per process (a forked child must not reuse its parent's onnxruntime sessions).
_engines: dict[tuple[int, EngineSpec], "Engine"] = {}
_engines_lock = threading.Lock()


# --- resolution: flag > environment > gallery > default ------------------------------------------


@dataclass(frozen=True)
class StoredEngine:
    """What a gallery file says about its engine: the vector space it holds (pinned), and defaults.

    ``space``/``dim``: the embedder space and dimension of its vectors; ``model_file``: the model
    file it was made with, when that was a trained model; ``detector``/``max_pixels``: its defaults.
    """

    space: str | None = None
    dim: int | None = None
    detector: str | None = None
    max_pixels: int | None = None
    model_file: str | None = None


class PinnedSpace(Embedder):
    """Stands in for the embedder of a gallery's vector space when it cannot be built here (a trained
    model whose file was not given): the gallery opens, and whatever needs no new vector works
    (listing, export, renames); embedding raises :class:`ConfigError` saying which file to pass."""

    aligner = "dlib-5pt"

    def __init__(self, space: str, dim: int, model_file: str | None) -> None:
        self.name = space
        self.dim = dim
        self._space = space
        self.model_file = model_file

    @property
    def space(self) -> str:
        return self._space

    @property
    def calibration(self) -> None:
        return None

    def message(self) -> str:
        if "@" in self._space:
            model, digest = self._space.split("@", 1)
            where = (
                f"it was made with the file {self.model_file}"
                + ("" if Path(self.model_file).is_file() else ", which is no longer there")
                if self.model_file
                else "the file it was made with is not recorded"
            )
            return (
                f"this gallery holds vectors of the trained model {model!r} (sha256 {digest}…); {where}: "
                f"pass that model file with --embedder FILE or {ENV_EMBEDDER}=FILE"
            )
        return (
            f"this gallery holds vectors of the embedder {self._space!r}, which this faceshot cannot build; "
            f"choose one of {', '.join(embedders.names())} or a model file with --embedder or {ENV_EMBEDDER}"
        )

    def embed(self, chips: np.ndarray) -> np.ndarray:
        raise ConfigError(self.message())


def embedder_for_space(stored: StoredEngine) -> str | Embedder:
    """The embedder that opens a gallery of ``stored.space`` when none is asked for.

    dlib's spaces open with their onnxruntime embedder (:data:`SPACE_DEFAULTS`); a registered name,
    with itself; a trained model's space (``name@digest``), with the model file the gallery recorded.
    When nothing here can make vectors of that space, a :class:`PinnedSpace` stands in.
    """
    space = stored.space
    if space is None:
        return DEFAULT_EMBEDDER
    if space in SPACE_DEFAULTS:
        return SPACE_DEFAULTS[space]
    if space in embedders.names():
        return space
    if stored.model_file and Path(stored.model_file).is_file():
        return stored.model_file
    return PinnedSpace(space, stored.dim or 0, stored.model_file)


def _environment(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def resolve_spec(
    detector: str | Detector | None = None,
    embedder: str | Embedder | None = None,
    max_pixels: int | None = None,
    *,
    aligner: str | Aligner | None = None,
    stored: StoredEngine | None = None,
    environ: Mapping[str, str] | None = None,
) -> EngineSpec:
    """The engine to use: each part from the argument (a command-line flag), else the environment
    (``FACESHOT_DETECTOR``, ``FACESHOT_EMBEDDER``, ``FACESHOT_MAX_PIXELS``), else the gallery's
    ``stored`` settings, else the package default.

    The embedder of a gallery is its vector space (:func:`embedder_for_space`); one given by flag or
    environment must be of that space, which the gallery checks when it opens
    (:class:`~faceshot.errors.EmbedderMismatchError`). Raises :class:`ConfigError` for a bad text,
    naming the variable it came from.
    """
    environ = os.environ if environ is None else environ
    stored = stored or StoredEngine()

    def pick(given: Any, variable: str, saved: Any) -> tuple[Any, str | None]:
        if given is not None:
            return given, None
        value = _environment(environ, variable)
        if value is not None:
            return value, variable
        return saved, None

    chosen_detector, detector_from = pick(detector, ENV_DETECTOR, stored.detector)
    chosen_embedder, embedder_from = pick(embedder, ENV_EMBEDDER, None)
    if chosen_embedder is None:
        chosen_embedder = embedder_for_space(stored)
    chosen_pixels, pixels_from = pick(max_pixels, ENV_MAX_PIXELS, stored.max_pixels)
    if pixels_from is not None:
        try:
            chosen_pixels = int(str(chosen_pixels).replace("_", ""))
        except ValueError:
            raise ConfigError(f"{ENV_MAX_PIXELS}={chosen_pixels!r}: expected a whole number of pixels") from None
    parts = {
        "detector": (chosen_detector if chosen_detector is not None else DEFAULT_DETECTOR, detector_from),
        "embedder": (chosen_embedder, embedder_from),
        "max_pixels": (chosen_pixels if chosen_pixels is not None else DEFAULT_MAX_PIXELS, pixels_from),
    }
    for part, (value, variable) in parts.items():
        if variable is not None:  # say which variable holds a bad text: the user may not know it is set
            try:
                EngineSpec(**{part: value})
            except ConfigError as exc:
                raise ConfigError(f"{variable}: {exc}") from None
    return EngineSpec(aligner=aligner, **{part: value for part, (value, _) in parts.items()})


def stored_engine(where: Any) -> StoredEngine | None:
    """What the gallery ``where`` says about its engine: a gallery file's path or URL (read only;
    ``None`` when it does not exist yet) or an open store (anything with ``embedder``, ``dim`` and
    ``get_setting``)."""
    if hasattr(where, "get_setting"):
        get = where.get_setting
        space, dim = getattr(where, "embedder", None), getattr(where, "dim", None)
    else:
        settings = _read_settings(where)
        if settings is None:
            return None
        get = settings.get
        space, dim = settings.get("embedder"), settings.get("dim")
    return StoredEngine(
        space=space,
        dim=None if dim is None else int(dim),
        detector=get(SETTING_DETECTOR),
        max_pixels=get(SETTING_MAX_PIXELS),
        model_file=get(SETTING_MODEL_FILE),
    )


def _read_settings(where: Any) -> dict[str, Any] | None:
    # Imported here: the gallery package imports the engine, which imports this module.
    from faceshot.gallery.database import read_settings

    return read_settings(where)


def open_engine(
    where: Any = None,
    *,
    engine: "Engine | None" = None,
    detector: str | Detector | None = None,
    embedder: str | Embedder | None = None,
    max_pixels: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> "Engine":
    """The engine for the gallery or photo collection ``where`` (a file path or an open store;
    ``None``: no gallery): ``engine`` when given, else built (once per process) from
    :func:`resolve_spec` with the gallery's stored settings. This is the one function galleries,
    collections and the command line resolve their engine with."""
    if engine is not None:
        return engine
    stored = None if where is None else stored_engine(where)
    return resolve_spec(detector, embedder, max_pixels, stored=stored, environ=environ).build()


def record_engine(store: Any, engine: "Engine", transaction: Any = None) -> None:
    """Record in a gallery (``store``: with ``get_setting``/``set_setting``) what reopening it needs
    and its space cannot say: the model file of a trained embedder, so that an error can name it.
    ``transaction``: a context manager factory the write must run in, for stores that need one."""
    path = getattr(engine.embedder, "path", None)
    if path is None or "@" not in engine.embedder.space:
        return
    path = os.path.abspath(path)
    if store.get_setting(SETTING_MODEL_FILE) == path:
        return
    if transaction is None:
        store.set_setting(SETTING_MODEL_FILE, path)
        return
    with transaction():
        store.set_setting(SETTING_MODEL_FILE, path)
