"""``simfl`` as a child process for benchmarks that time whole commands, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def simfl(*args: str, cwd: Path) -> None:
    """Run ``simfl ARGS``; stop the benchmark with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "simfl.cli", *args], cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"simfl {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def set_flags(overrides: list[str]) -> list[str]:
    """``--set`` flags for each ``dotted.key=value``."""
    return [flag for item in overrides for flag in ("--set", item)]
