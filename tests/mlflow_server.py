"""A real ``mlflow server`` on 127.0.0.1 for the tracking tests: SQLite backend, artifacts
proxied to a local directory, a free port, stopped (its whole process group) by the caller."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Server:
    uri: str
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def mlflow_server(root: Path, timeout: float = 120) -> Iterator[Server]:
    """Start a tracking server storing under ``root``; yield it; stop it."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = (root / "server.log").open("w")
    server = subprocess.Popen(command, cwd=root, stdout=log, stderr=log, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(uri, server, time.monotonic() + timeout, root / "server.log")
        yield Server(uri, server)
    finally:
        stop(server)
        log.close()


def stop(server: subprocess.Popen) -> None:
    """Kill the server's process group (uvicorn and its job runner) as a crash would: what it
    stored is not needed after the test, and a graceful shutdown takes seconds."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _wait_healthy(uri: str, server: subprocess.Popen, deadline: float, log: Path) -> None:
    while time.monotonic() < deadline:
        assert server.poll() is None, f"mlflow server exited: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"mlflow server not healthy in time: {log.read_text()[-2000:]}")
