"""``simfl`` in a child process, as a user's shell runs it: for what only a fresh process shows
(cross-process determinism, kill -9 and resume, exit codes). Everything else goes through the
in-process ``cli`` fixture of ``conftest.py``, which saves the CLI's start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
