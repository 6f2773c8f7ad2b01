"""A network namespace with only loopback, for servers that would otherwise reach other addresses.

Milvus 2.3.5 binds every interface whatever its configuration says, and Ray probes a public
address to choose its node IP. Tests and benchmarks that start them must send no traffic beyond
127.0.0.1/::1, so they run inside a namespace whose only interface is ``lo``; a client must be in
the same namespace to reach them.

Two ways in:

- :func:`enter` moves *this process* into a new namespace (Linux ``unshare(CLONE_NEWNET)``,
  needs root). It must run before the process starts threads or opens sockets: threads that
  exist already stay outside. The test suite calls it when ``tests/conftest.py`` is imported.
- :func:`isolated_argv` wraps a command for ``unshare -n -p -f --mount-proc``, so a benchmark can
  re-run itself inside (:func:`reexec`); the PID namespace ends every server it started with it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import sys

__all__ = ["loopback_only", "problem", "enter", "isolated_argv", "reexec"]

CLONE_NEWNET = 0x40000000  # from <sched.h>


def loopback_only() -> bool:
    """Whether this process's network namespace has no interface but an up ``lo``.

    Reads the namespace of the calling process (``if_nameindex``), not ``/sys/class/net``, which
    shows the namespace that mounted sysfs.
    """
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        return False
    try:  # lo exists; is it up?
        with socket.create_server(("127.0.0.1", 0)) as server:
            socket.create_connection(server.getsockname(), timeout=1).close()
        return True
    except OSError:
        return False


def problem() -> str | None:
    """What this machine lacks to make a loopback-only namespace, or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "making a network namespace needs root (unshare CLONE_NEWNET)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing: cannot bring loopback up in a new namespace"
    if shutil.which("unshare") is None:
        return "the `unshare` command (util-linux) is missing"
    return None


def enter() -> None:
    """Move this process into a new network namespace with only loopback, and bring ``lo`` up.

    Does nothing when the process is in such a namespace already. Raises :class:`OSError` when it
    cannot (see :func:`problem` for why it may not be possible on this machine).
    """
    if loopback_only():
        return
    missing = problem()
    if missing:
        raise OSError(missing)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWNET) failed: {os.strerror(errno)}")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
    if not loopback_only():
        raise OSError("the new network namespace did not come up with only loopback")


def isolated_argv(argv: list[str]) -> list[str]:
    """``argv`` run inside new network and PID namespaces with loopback up (``unshare`` as root)."""
    script = 'ip link set lo up && exec "$@"'
    return ["unshare", "-n", "-p", "-f", "--mount-proc", "sh", "-c", script, "sh", *argv]


def reexec() -> None:
    """Re-run this Python program inside a loopback-only namespace, unless it is in one already.

    For benchmarks that start Milvus or Ray. Raises :class:`OSError` when the machine cannot.
    """
    if loopback_only():
        return
    missing = problem()
    if missing:
        raise OSError(missing)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = isolated_argv([sys.executable, *sys.argv])
    os.execvp(argv[0], argv)
