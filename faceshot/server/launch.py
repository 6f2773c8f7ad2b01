"""Start ``faceshot serve`` as a child process on loopback and wait until every worker is ready.

Used by the test suite and ``benchmarks/serve_load.py``; standard library only (no FastAPI import).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["free_port", "start_server"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    db: Path | str,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 120.0,
) -> tuple[subprocess.Popen, str]:
    """``faceshot serve --db DB`` on 127.0.0.1 and a free port, returned once each of the ``workers``
    processes has answered ``/readyz`` (told apart by their ``X-Faceshot-Worker`` header):
    ``(process, base URL)``. ``env`` is added to this process's environment (``FACESHOT_DB`` is
    replaced: the gallery is ``db``, a path or a URL, handed over in the environment so that a
    password in it never shows in the process list); ``log`` receives the server's output. Raises ``RuntimeError``,
    with the end of the log, when the server exits or is not ready within ``timeout`` seconds."""
    port = free_port()
    environment = {**os.environ, **(env or {})}
    environment["FACESHOT_DB"] = str(db)
    output = open(log, "wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "faceshot", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=environment, stdout=output, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    ready: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(ready) < workers:
        if process.poll() is not None:
            text = log.read_text(errors="replace") if log is not None else ""
            raise RuntimeError(f"faceshot serve exited with {process.returncode}: {text[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"faceshot serve did not become ready in {timeout:g} s")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
                if response.status == 200:
                    ready.add(response.headers["x-faceshot-worker"])
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return process, url
