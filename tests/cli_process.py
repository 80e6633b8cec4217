"""``simfl`` in a child process, as a user's shell runs it: for what only a fresh process shows
(cross-process determinism, kill -9 and resume, exit codes). Everything else goes through the
in-process ``cli`` fixture of ``conftest.py``, which saves the CLI's start-up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """This environment for a child ``simfl``, minus the W&B service this process may run: a
    child must start its own (a killed child's run id would stay "in use" in ours). The child
    imports this checkout's simfl whatever its working directory."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("WANDB_SERVICE")}
    path = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, "COLUMNS": "200", "PYTHONPATH": path}


def simfl(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``simfl ARGS`` to its end and capture what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "simfl.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )


def start_simfl(*args: str, cwd: Path, **popen: Any) -> subprocess.Popen:
    """Start ``simfl ARGS`` in a process group of its own, so a test can kill -9 all of it."""
    output = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    return subprocess.Popen(
        [sys.executable, "-m", "simfl.cli", *args],
        cwd=cwd,
        start_new_session=True,
        env=child_env(),
        **{**output, **popen},
    )


def kill_a_busy_actor(
    root: psutil.Process, results: Path, metrics: str, after_round: int
) -> threading.Thread:
    """In the background: once ``after_round`` is in a run's metrics (the first file matching
    the glob ``metrics`` under ``results``), ``kill -9`` the first client actor of ``root``'s
    process tree caught running a message (Ray titles it so). The thread's ``killed`` is the
    pid it killed (None if it found none in two minutes)."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            files = sorted(results.glob(metrics))
            if files and len(files[0].read_text().splitlines()) > after_round:
                for process in root.children(recursive=True):
                    try:
                        busy = "ClientAppActor.run" in " ".join(process.cmdline())
                    except psutil.Error:
                        continue
                    if busy:
                        os.kill(process.pid, signal.SIGKILL)
                        thread.killed = process.pid  # type: ignore[attr-defined]
                        return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.killed = None  # type: ignore[attr-defined]
    thread.start()
    return thread
