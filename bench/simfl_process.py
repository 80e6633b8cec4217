"""``simfl`` as a child process for benchmarks that time whole commands, as a user runs them."""

from __future__ import annotations

import argparse
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


def add_cache_and_json_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cache-dir`` (the data cache both sides share) and ``--json`` (figures file)."""
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".cache" / "simfl")
    parser.add_argument("--json", type=Path, help="also write the figures here")


def run_overrides(rounds: int, cache_dir: Path) -> list[str]:
    """The overrides every command-timing benchmark applies: its rounds, the shared data
    cache, and no W&B (its start-up is not what is measured)."""
    return [
        f"scenario.rounds={rounds}",
        f"tracking.cache_dir={cache_dir.resolve()}",
        "tracking.wandb_mode=disabled",
    ]
