"""The loopback-only network namespace that servers binding every interface (Milvus) or probing a
public address (Ray) run in during tests and benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from faceshot.sandbox import namespace


def test_the_run_sees_only_loopback_and_reaches_no_public_address(loopback_namespace) -> None:
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    with pytest.raises(OSError):
        socket.create_connection(("192.0.2.1", 80), timeout=2)  # TEST-NET-1: must not even route
    with socket.create_server(("127.0.0.1", 0)) as server:  # loopback works
        socket.create_connection(server.getsockname(), timeout=2).close()


def test_a_wrapped_command_runs_in_its_own_loopback_only_namespace() -> None:
    if namespace.problem():
        pytest.skip(namespace.problem())
    code = "import socket; print(','.join(n for _, n in socket.if_nameindex()))"
    out = subprocess.run(namespace.isolated_argv([sys.executable, "-c", code]), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "lo"


def test_a_second_enter_is_a_no_op_inside_the_namespace(loopback_namespace) -> None:
    namespace.enter()
    assert namespace.loopback_only()
