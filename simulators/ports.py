"""Loopback ports: pick a free one, see whether one is taken, wait until a started server listens on one.

One helper for everything that starts servers: `make run` (run.py, the demo simulators), the tests and the
benchmarks.
"""
from __future__ import annotations

import socket
import time

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; another process may still take it later)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """True when nothing accepts connections on `port`."""
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) != 0


def wait_for_port(port: int, what: str = "a server", seconds: float = 60) -> None:
    """Return once something accepts connections on `port`; `RuntimeError` naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not port_free(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start listening on port {port} within {seconds:.0f}s")
