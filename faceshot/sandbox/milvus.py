"""A throwaway single-node Milvus server on loopback, for the tests and the benchmarks.

The PyPI package ``milvus`` (2.3.5) ships the real standalone server (the Go binary with its
embedded etcd and RocksMQ) as LZMA files; :class:`milvus.MilvusServer` unpacks them into its data
directory, writes a configuration and runs ``milvus run standalone``. Here:

- the unpacked binaries are kept in one cache folder (the repository's ``.cache/milvus-2.3.5``) and
  linked into each server's data directory, so a second start does not unpack ~150 MB again;
- every component's ``ip`` is set to 127.0.0.1. Milvus 2.3.5 still binds every interface whatever
  the configuration says, so the caller must be inside a loopback-only network namespace
  (:mod:`faceshot.sandbox.namespace`); :func:`start` refuses to run outside one;
- :meth:`MilvusSandbox.stop` ends the server with every process it started.

    with start(tmp_path / "milvus") as server:
        store = LocalStore("g.db", embedder=..., dim=128, vectors=server.url("people"))
"""

from __future__ import annotations

import logging
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from faceshot.sandbox import namespace

__all__ = ["MilvusSandbox", "start", "MilvusStartError", "DEFAULT_CACHE", "COMPONENTS"]

log = logging.getLogger(__name__)

#: Where the unpacked binaries are kept between runs (relative to the current directory unless
#: ``FACESHOT_MILVUS_CACHE`` names another folder).
DEFAULT_CACHE = Path(".cache") / "milvus-2.3.5"
#: The server's components, each told to use 127.0.0.1 as its address.
COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
#: How long the server may take to answer its health check (seconds): 5-12 s on two busy cores.
READY_TIMEOUT = 120.0


class MilvusStartError(RuntimeError):
    """The Milvus server did not start; the message ends with the tail of its log."""


class MilvusSandbox:
    """A running standalone Milvus server: its address (``host``, ``port``), data folder, and :meth:`stop`."""

    def __init__(self, server: Any, data_dir: Path) -> None:
        self._server = server
        self.data_dir = data_dir
        self.host = "127.0.0.1"
        self.port = int(server.listen_port)
        self.pid = int(server.server_proc.pid)

    @property
    def uri(self) -> str:
        """``http://127.0.0.1:PORT``, as pymilvus takes it."""
        return f"http://{self.host}:{self.port}"

    def url(self, collection: str, **options: Any) -> str:
        """The vector-engine URL of a collection on this server (``milvus://127.0.0.1:PORT?collection=...``)."""
        query = "&".join(f"{key}={value}" for key, value in {"collection": collection, **options}.items())
        return f"milvus://{self.host}:{self.port}?{query}"

    def running(self) -> bool:
        return self._server.server_proc is not None and self._server.server_proc.poll() is None

    def stop(self) -> None:
        """End the server and every process under it (SIGTERM, then SIGKILL after 1 s: a throwaway
        server's data need not be flushed)."""
        proc = self._server.server_proc
        if proc is None:
            return
        tree = [proc.pid, *_descendants(proc.pid)]
        for pid in reversed(tree):
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline and any(_alive(pid) for pid in tree):
            if proc.poll() is not None and not any(_alive(pid) for pid in tree[1:]):
                break
            time.sleep(0.1)
        for pid in tree:
            if _alive(pid):
                _signal(pid, signal.SIGKILL)
        try:
            proc.wait(timeout=10)
        except Exception:  # already reaped
            pass
        self._server.server_proc = None
        self._server.stop()  # closes its log files

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's logs (for error messages)."""
        text = []
        for name in ("milvus-stderr.log", "milvus-stdout.log"):
            path = self.data_dir / "logs" / name
            if path.is_file():
                text += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text[-lines:])

    def __enter__(self) -> "MilvusSandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start(
    data_dir: str | os.PathLike[str],
    *,
    cache: str | os.PathLike[str] | None = None,
    settings: dict[str, Any] | None = None,
) -> MilvusSandbox:
    """Start a standalone Milvus server keeping its data in ``data_dir``; returns once it answers.

    ``settings``: more entries of its ``milvus.yaml`` by dotted key (``{"proxy.timeTickInterval": 50}``:
    a query at Strong consistency then waits at most 50 ms instead of 200 for the next time tick).

    Raises :class:`OSError` outside a loopback-only network namespace (the server would listen on
    every interface), :class:`ImportError` when the ``milvus`` package is missing (extra ``test``),
    :class:`MilvusStartError` when the server exits or is not healthy within :data:`READY_TIMEOUT`.
    """
    if not namespace.loopback_only():
        raise OSError(
            "Milvus 2.3.5 listens on every interface: start it inside a loopback-only network namespace "
            "(faceshot.sandbox.namespace.enter or reexec)"
        )
    try:
        import milvus
    except ImportError as exc:
        raise ImportError("the Milvus test server needs the `milvus` package: pip install 'faceshot[test]'") from exc
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    _link_binaries(milvus, data, Path(cache or os.environ.get("FACESHOT_MILVUS_CACHE") or DEFAULT_CACHE).resolve())
    config = milvus.MilvusServerConfig()
    server = milvus.MilvusServer(config, wait_for_started=False)
    server.set_base_dir(str(data))
    for component in COMPONENTS:
        config.set(f"{component}.ip", "127.0.0.1")
    for key, value in (settings or {}).items():
        config.set(key, value)
    started = time.monotonic()
    server.start()
    sandbox = MilvusSandbox(server, data)
    try:
        _wait_healthy(sandbox, server.webservice_port)
    except BaseException:
        sandbox.stop()
        raise
    log.info("Milvus ready on %s in %.1f s", sandbox.uri, time.monotonic() - started)
    return sandbox


def _link_binaries(milvus: Any, data: Path, cache: Path) -> None:
    """Unpack the binaries once into ``cache/bin`` and link that folder as ``data/bin``."""
    # milvus unpacks a file only when its recorded checksum differs: a warm cache costs a checksum pass.
    milvus._initialize_data_files(str(cache))
    link = data / "bin"
    if link.is_symlink() or link.exists():
        return
    link.symlink_to(cache / "bin", target_is_directory=True)


def _wait_healthy(sandbox: MilvusSandbox, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    url = f"http://127.0.0.1:{port}/healthz"
    while time.monotonic() < deadline:
        if not sandbox.running():
            raise MilvusStartError(f"the Milvus server exited while starting:\n{sandbox.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if b"OK" in answer.read():
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise MilvusStartError(f"the Milvus server was not healthy within {READY_TIMEOUT:.0f} s:\n{sandbox.log_tail()}")


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (from /proc's children lists), parents before children."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        children: list[int] = []
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as file:
                    children += [int(child) for child in file.read().split()]
        except OSError:
            continue
        found += children
        pending += children
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
