"""Folder enrollment on a Ray cluster: ``faceshot enroll-dir DIR --runner ray [--address …]``.

:class:`RayRunner` is a :class:`~faceshot.bulk.Runner` for
:meth:`Gallery.enroll_dir <faceshot.gallery.Gallery.enroll_dir>`: the gallery process plans the
work (the folder walk, the skip of photos already enrolled, by content hash), applies the
enrollment gate and writes every record, in batches, as the single writer; the cluster computes.

Ray Data spreads the list of files over a pool of actors. Each actor builds the engine once from its
description (:class:`~faceshot.spec.EngineSpec`: detector and options, aligner, embedder, pixel
limit), then for each batch of files reads the bytes (a local path every node can read, or an
fsspec URL such as ``s3://bucket/people/ann/1.jpg``), hashes them, detects, aligns and embeds, and
returns each file's :class:`~faceshot.bulk.FileResult` with the hash of the bytes it used. A file
that cannot be read or holds no usable face comes back as an error result, as with the local
runner; it does not stop the run.

Resuming: when the gallery already holds faces, a first pass of Ray tasks hashes every file and the
gallery process skips the ones enrolled before any detection runs, so a run killed midway is simply
started again. (On an empty gallery that pass is left out: the actors hash as they read.)

Connection: with ``address`` the runner joins that cluster (its token, when the cluster uses token
authentication, comes from ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH`` as Ray documents). Without
it, a Ray instance is started for this run and stopped after it, with token authentication on, its
token in a new temp folder (not the user's home), and usage statistics off.

Every node needs faceshot (with the ``ray`` extra) installed, as any Ray application does.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import pickle
import secrets
import shutil
import socket
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from faceshot.bulk import FileResult, represent_batch
from faceshot.engine import Engine, Multiple
from faceshot.errors import ConfigError, FaceshotError, ImageNotFoundError, MissingExtraError, UnavailableError
from faceshot.io import read_bytes
from faceshot.spec import EngineSpec
from faceshot.walk import is_url

__all__ = ["RayRunner", "ray_environment", "read_source"]

log = logging.getLogger(__name__)

#: Files per actor call: enough to embed a batch of chips at once, few enough to spread a small folder.
FILES_PER_CALL = 8
#: Seconds the actors may take to start and build their engines before the run gives up.
ACTOR_START_TIMEOUT = 600
#: Seconds to wait for the head's port to accept a connection.
CONNECT_TIMEOUT = 10
#: Files per task of the hashing pass.
FILES_PER_HASH_TASK = 64


def ray_environment(folder: Path) -> dict[str, str]:
    """The variables for a Ray cluster with token authentication whose token file is
    ``folder/auth_token`` (made, with a fresh random token, when missing), and usage statistics off."""
    folder.mkdir(parents=True, exist_ok=True)
    token = folder / "auth_token"
    if not token.exists():
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    return {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def _reload_auth_settings() -> None:
    """Make Ray's C++ side read the authentication variables again.

    It reads them once, when ray is imported, and caches the token: a process that imported ray
    before (or talked to another cluster) would otherwise keep the old mode and token. Ray's own
    ``ray get-auth-token``/``ray.init`` paths do the same (ray 2.60,
    ``ray._private.authentication.authentication_token_setup``).
    """
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError) as exc:  # another Ray version: it reads them at import only
        log.debug("cannot reload Ray's authentication settings: %s", exc)


def read_source(source: str) -> bytes:
    """The bytes of a local path or of an fsspec URL; raises :class:`~faceshot.errors.ImageNotFoundError`."""
    if not is_url(source):
        return read_bytes(source)
    try:
        import fsspec

        with fsspec.open(source, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        raise ImageNotFoundError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ImageNotFoundError(f"{source}: is a directory, not an image file") from None
    except (OSError, ValueError, ImportError) as exc:
        raise ImageNotFoundError(f"{source}: cannot be read ({exc})") from None


def _check_reachable(address: str) -> None:
    """Refuse at once a ``host:port`` where nothing listens (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # "auto", "ray://…" and the like: left to Ray
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise UnavailableError(f"no Ray cluster answers at {address}: {exc.strerror or exc}") from None


def _batches(dataset: Any) -> Iterator[dict[str, np.ndarray]]:
    """The dataset's output blocks as they finish; a failed run raises
    :class:`~faceshot.errors.UnavailableError` (what was written before it stays written)."""
    import ray.exceptions

    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except (ray.exceptions.RayError, TimeoutError) as exc:
        raise UnavailableError(f"the Ray run failed: {exc}") from None


def _named(data: bytes, source: str) -> io.BytesIO:
    """The bytes as a stream named after the file, so decoding errors name it."""
    stream = io.BytesIO(data)
    stream.name = source
    return stream


def _hash_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The hashing pass: each file's SHA-256, or its read error (pickled)."""
    digests, errors = [], []
    for source in batch["source"]:
        try:
            digests.append(hashlib.sha256(read_source(str(source))).hexdigest())
            errors.append(b"")
        except FaceshotError as exc:
            digests.append("")
            errors.append(pickle.dumps(exc))
    return {"index": batch["index"], "sha256": np.array(digests, dtype=object), "error": np.array(errors, dtype=object)}


class _Represent:
    """A Ray Data actor: builds the engine once, then reads, hashes, detects and embeds batches of files."""

    def __init__(self, spec: EngineSpec, one_face: Multiple | None, threads: int, keep_chips: bool) -> None:
        import ray

        from faceshot.onnx_graphs import set_thread_budget

        set_thread_budget(threads)
        self.engine = spec.build()
        self.one_face = one_face
        self.keep_chips = keep_chips
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sources = [str(source) for source in batch["source"]]
        digests: list[str] = []
        readable: list[tuple[str, io.BytesIO]] = []
        unreadable: dict[int, FileResult] = {}
        for position, source in enumerate(sources):
            try:
                data = read_source(source)
            except FaceshotError as exc:
                unreadable[position] = FileResult(source, error=exc)
                digests.append("")
                continue
            digests.append(hashlib.sha256(data).hexdigest())
            readable.append((source, _named(data, source)))
        computed = iter(represent_batch(readable, self.engine, one_face=self.one_face, keep_chips=self.keep_chips))
        results = [unreadable[position] if position in unreadable else next(computed) for position in range(len(sources))]
        return {
            "index": batch["index"],
            "sha256": np.array(digests, dtype=object),
            "result": np.array([pickle.dumps(result) for result in results], dtype=object),
            "node": np.array([self.node] * len(sources), dtype=object),
        }


class RayRunner:
    """Detects and embeds a folder's photos on a Ray cluster (a :class:`~faceshot.bulk.Runner`).

    ``address``: a running cluster (``host:port`` of its head, or ``auto``); ``None`` starts a Ray
    instance on this machine for the run. ``actors``: how many actors detect and embed (default:
    one per CPU the cluster has), each with ``cpus_per_actor`` CPUs, which is also the thread
    budget of its onnxruntime sessions. ``files_per_call``: files an actor handles per call (its
    chips embedded in one batch). Use it as a context manager, or call :meth:`close`.
    :attr:`nodes` counts the files each node's actors handled in the last run (node id → files).

    Raises :class:`~faceshot.errors.MissingExtraError` without the ``ray`` extra and
    :class:`~faceshot.errors.UnavailableError` when the cluster cannot be reached.
    """

    hashes_while_embedding = True
    reads_urls = True

    def __init__(self, address: str | None = None, *, actors: int | None = None, cpus_per_actor: float = 1,
                 files_per_call: int = FILES_PER_CALL) -> None:
        if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int) or actors < 1):
            raise ConfigError(f"actors must be a whole number, at least 1, got {actors!r}")
        if not cpus_per_actor > 0:
            raise ConfigError(f"cpus_per_actor must be positive, got {cpus_per_actor!r}")
        if isinstance(files_per_call, bool) or not isinstance(files_per_call, int) or files_per_call < 1:
            raise ConfigError(f"files_per_call must be a whole number, at least 1, got {files_per_call!r}")
        self.address = address
        self.actors = actors
        self.cpus_per_actor = cpus_per_actor
        self.files_per_call = files_per_call
        self.nodes: Counter[str] = Counter()
        self._temp: str | None = None
        self._saved_env: dict[str, str | None] = {}
        self._ray: Any = None

    def __enter__(self) -> "RayRunner":
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- connection -------------------------------------------------------------------------
    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def connect(self) -> None:
        """Join the cluster at ``address``, or start a local Ray instance (nothing if connected already)."""
        if self._ray is not None:
            return
        self._set_env({"RAY_USAGE_STATS_ENABLED": "0"})
        options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        if self.address is None:
            # A Ray of our own: token auth with the token in a fresh temp folder, never ~/.ray.
            self._temp = tempfile.mkdtemp(prefix="faceshot-ray-")
            auth = ray_environment(Path(self._temp))
            if "RAY_AUTH_MODE" not in os.environ:
                self._set_env(auth)
            elif not {"RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"} & set(os.environ):
                self._set_env({"RAY_AUTH_TOKEN_PATH": auth["RAY_AUTH_TOKEN_PATH"]})
            # "local": a new instance even where RAY_ADDRESS names another cluster.
            options.update(address="local", include_dashboard=False, _temp_dir=os.path.join(self._temp, "ray"))
        else:
            _check_reachable(self.address)
            options["address"] = self.address
        try:
            import ray
            import ray.data  # noqa: F401  (Ray Data is the part of ray[data] this runner needs)
        except ImportError as exc:
            self.close()
            raise MissingExtraError(f"the Ray runner needs the ray extra: pip install 'faceshot[ray]' ({exc})") from None
        _reload_auth_settings()
        try:
            ray.init(**options)
        except Exception as exc:  # ConnectionError, ray.exceptions.AuthenticationError, a failed start...
            self.close()
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            raise UnavailableError(f"cannot start or reach {where}: {exc}") from None
        self._ray = ray
        log.info("Ray runner on %s: %s", self.address or "a local Ray instance", ray.cluster_resources())

    def close(self) -> None:
        """Leave the cluster (and stop the local Ray instance this runner started)."""
        if self._ray is not None:
            self._ray.shutdown()
            self._ray = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    # -- the runner -------------------------------------------------------------------------
    def _dataset(self, sources: Sequence[str], per_block: int) -> Any:
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        # Hand out files only once every actor has built its engine: the first one ready would
        # otherwise take the whole queue of a small folder while the others load their models.
        context.wait_for_min_actors_s = ACTOR_START_TIMEOUT
        # The blocks hold only file names, made on this node: sending them to the actors "near"
        # them would keep every file on this node's actors. The actors read the files themselves.
        with warnings.catch_warnings():  # deprecated in 2.60 but still read; no replacement there yet
            warnings.simplefilter("ignore", DeprecationWarning)
            context.execution_options.actor_locality_enabled = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        items = [{"index": index, "source": source} for index, source in enumerate(sources)]
        return ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / per_block)))

    def digests(self, sources: Sequence[str]) -> list[str | FaceshotError]:
        """The hashing pass: Ray tasks read and hash every file (errors per file, as the local runner)."""
        if not sources:
            return []
        self.connect()
        found: list[str | FaceshotError] = [""] * len(sources)
        dataset = self._dataset(sources, FILES_PER_HASH_TASK).map_batches(
            _hash_batch, batch_size=FILES_PER_HASH_TASK, batch_format="numpy"
        )
        for batch in _batches(dataset):
            for index, digest, error in zip(batch["index"], batch["sha256"], batch["error"]):
                found[int(index)] = pickle.loads(error) if error else str(digest)
        return found

    def represent(
        self, engine: Engine, items: Sequence[tuple[str, str | None]], *, one_face: Multiple | None,
        keep_chips: bool = True,
    ) -> Iterator[tuple[int, str, FileResult]]:
        """Every file's result from the actor pool, as they finish (not in input order)."""
        self.nodes = Counter()
        if not items:
            return
        self.connect()
        import ray.data

        cpus = self._ray.cluster_resources().get("CPU", 1)
        actors = min(self.actors or max(1, int(cpus // self.cpus_per_actor)), len(items))
        threads = max(1, int(self.cpus_per_actor))
        # Blocks of at most files_per_call files, and a few per actor, so a small folder is spread too.
        per_block = max(1, min(self.files_per_call, math.ceil(len(items) / (2 * actors))))
        dataset = self._dataset([source for source, _ in items], per_block).map_batches(
            _Represent,
            fn_constructor_args=(engine.spec, one_face, threads, keep_chips),
            batch_size=per_block,
            batch_format="numpy",
            # One batch at a time per actor: a batch waits for a free actor instead of queueing
            # behind a busy one, so files spread over every node however few there are.
            compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1),
            num_cpus=self.cpus_per_actor,
        )
        for batch in _batches(dataset):
            for index, digest, result, node in zip(batch["index"], batch["sha256"], batch["result"], batch["node"]):
                self.nodes[str(node)] += 1
                yield int(index), str(digest), pickle.loads(result)
