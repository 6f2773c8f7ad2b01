"""A small Ray cluster on this machine: a head node and worker nodes, each its own ``ray start``.

For tests and benchmarks of the Ray runner (:mod:`faceshot.bulk_ray`) that must exercise the
multi-node path for real: every node is a separate raylet with its own temp folder, on 127.0.0.1.
Ray probes a public address to choose its node IP, so start the cluster inside a loopback-only
network namespace (:mod:`faceshot.sandbox.namespace`), and the driver in the same one.

Token authentication is on (``RAY_AUTH_MODE=token``) with a fresh token written into the
cluster's own folder (``RAY_AUTH_TOKEN_PATH``), never into the user's home; usage statistics are
off. :attr:`LocalCluster.env` holds these variables: a driver process (``faceshot enroll-dir
--runner ray --address …``) needs them to connect.

    with LocalCluster(tmp_path, nodes=2) as cluster:
        subprocess.run([..., "--address", cluster.address], env={**os.environ, **cluster.env})
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from faceshot.bulk_ray import ray_environment

__all__ = ["LocalCluster"]

#: Seconds the nodes get to end after SIGTERM before SIGKILL (a test cluster keeps nothing worth a drain).
STOP_GRACE = 5.0
#: How long one node may take to join (ray start, then the head's view of it), in seconds.
START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalCluster:
    """``nodes`` Ray nodes on 127.0.0.1 (one head), each with ``cpus`` logical CPUs.

    ``folder``: where the nodes keep their temp folders, logs and the token (removed on stop
    unless ``keep``). ``pythonpath``: put in front of the nodes' ``PYTHONPATH``, so their workers
    import this checkout of faceshot. :meth:`start` waits until every node is alive and raises
    :class:`RuntimeError` (with the tail of the node's log) when one does not come up.
    """

    def __init__(self, folder: str | os.PathLike[str], *, nodes: int = 2, cpus: int = 1,
                 pythonpath: str | None = None, object_store_mb: int = 100) -> None:
        if nodes < 1 or cpus < 1:
            raise ValueError(f"a cluster needs at least one node and one CPU each, got {nodes} and {cpus}")
        self.folder = Path(folder)
        self.nodes = nodes
        self.cpus = cpus
        self.object_store_mb = object_store_mb
        self.env = ray_environment(self.folder)
        if pythonpath:
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, os.environ.get("PYTHONPATH")]))
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._node_dirs: list[Path] = []

    def __enter__(self) -> "LocalCluster":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _ray(self, *args: str, node_dir: Path, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
        ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
        log = node_dir / "start.log"
        with open(log, "ab") as sink:
            return subprocess.run([ray, *args], env={**os.environ, **self.env}, stdout=sink, stderr=subprocess.STDOUT,
                                  timeout=timeout, check=False)

    def start(self) -> None:
        """Start the head, then the workers, and wait until the head counts every node alive."""
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus), "--disable-usage-stats",
                  "--object-store-memory", str(self.object_store_mb * 1024 * 1024)]
        for number in range(self.nodes):
            node_dir = self.folder / f"node{number}"
            node_dir.mkdir(parents=True, exist_ok=True)
            self._node_dirs.append(node_dir)
            head = ["--head", "--port", str(self.port), "--include-dashboard", "false"]
            role = head if number == 0 else ["--address", self.address]
            done = self._ray("start", *role, *common, "--temp-dir", str(node_dir / "ray"), node_dir=node_dir)
            if done.returncode != 0:
                tail = (node_dir / "start.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"ray start of node {number} failed (exit {done.returncode}):\n{tail}")
        self.wait_alive()

    def alive_nodes(self) -> int:
        """How many nodes the head counts alive (asked by a short driver; the state API needs the dashboard)."""
        script = (
            f"import ray; ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False); "
            "print(sum(1 for node in ray.nodes() if node['Alive']))"
        )
        try:
            done = subprocess.run([sys.executable, "-c", script], env={**os.environ, **self.env},
                                  capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return 0
        lines = done.stdout.strip().splitlines()
        return int(lines[-1]) if done.returncode == 0 and lines and lines[-1].isdigit() else 0

    def wait_alive(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            alive = self.alive_nodes()
            if alive >= self.nodes:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"only {alive} of {self.nodes} Ray nodes alive after {timeout:.0f} s")
            time.sleep(1)

    def processes(self) -> set[int]:
        """Ids of this cluster's processes: the nodes' and all their descendants (workers, agents)."""
        return _trees([str(node_dir) for node_dir in self._node_dirs] + [self.address])

    def stop(self) -> None:
        """Stop every node: its processes (those whose command line names one of this cluster's
        temp folders or its address) and their descendants (workers, agents) get SIGTERM, then SIGKILL.

        Not ``ray stop``, which ends every Ray process of the machine's user, other clusters' too.
        """
        pids = self.processes()
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and any(_exists(pid) for pid in pids):
            time.sleep(0.3)
        for pid in self.processes() | {pid for pid in pids if _exists(pid)}:
            _signal(pid, signal.SIGKILL)
        self._node_dirs = []


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def _exists(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _trees(marks: list[str]) -> set[int]:
    """Ids of the processes whose command line contains one of ``marks``, and of all their descendants."""
    parents: dict[int, int] = {}
    roots: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parents[pid] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if any(mark in command for mark in marks):
            roots.add(pid)
    found = set(roots)
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in found} - found
        grew = bool(children)
        found |= children
    return found
