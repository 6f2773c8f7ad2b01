"""Models faceshot does not ship, fetched only when the user asks (``faceshot models fetch NAME``).

Nothing here runs on its own: detectors that need a fetched model raise :class:`ModelError` naming
the command instead. ``mtcnn``: facenet-pytorch 2.6.0's wheel (MIT) is downloaded with pip, without
its dependencies (it pins torch<2.3, numpy<2, Pillow<10.3, which cannot sit beside faceshot), or
read from a wheel file the user already has (closed networks); its three networks are checked
by SHA-256, converted to ONNX and written into the cache (:mod:`faceshot.detect.mtcnn_weights`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from faceshot.errors import ConfigError, ModelError

__all__ = ["FETCHABLE", "fetch"]

#: What ``fetch`` knows, and the package each comes from.
FETCHABLE = {"mtcnn": "facenet-pytorch==2.6.0"}


def _download(requirement: str, directory: Path) -> Path:
    """Download the wheel of ``requirement`` (no dependencies) with this interpreter's pip."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "-q", requirement, "-d", str(directory)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelError(f"cannot run pip to download {requirement}: {exc}") from None
    wheels = sorted(directory.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel was downloaded"]
        raise ModelError(f"pip could not download {requirement}: {last[0]}; "
                         "on a closed network, download the wheel elsewhere and pass it with --wheel FILE")
    return wheels[0]


def fetch(name: str, *, wheel: str | Path | None = None, directory: str | Path | None = None) -> list[Path]:
    """Fetch and convert the model ``name`` (see :data:`FETCHABLE`); the files written.

    ``wheel``: the package's wheel file, instead of downloading it. ``directory``: where to write
    (default: the cache, ``$XDG_CACHE_HOME/faceshot``). Raises :class:`ConfigError` for an unknown
    name and :class:`ModelError` when the download, the check or the conversion fails.
    """
    if name not in FETCHABLE:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(sorted(FETCHABLE))}")
    from faceshot.detect import mtcnn_weights

    if wheel is not None:
        if not Path(wheel).is_file():
            raise ModelError(f"the wheel {wheel} does not exist")
        return mtcnn_weights.install(wheel, directory)
    with tempfile.TemporaryDirectory(prefix="faceshot-fetch-") as temp:
        return mtcnn_weights.install(_download(FETCHABLE[name], Path(temp)), directory)
