"""Dated benchmark records: what a benchmark measured, where, on which code, with which command.

Each ``simfl bench W --record`` appends one JSON file to ``bench/results/`` (never rewrites
one): the UTC date and time, the git commit (and whether the tree had uncommitted changes),
the machine (CPU model, cores, memory, GPU if torch sees one), the command line and the
benchmark's figures. ``python -m simfl.manual`` renders every record into the documentation's
benchmarks page, so a figure the docs quote always names its record.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=RESULTS.parent, capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    import psutil

    return round(psutil.virtual_memory().total / 2**30, 1)


def _gpu() -> str:
    try:
        import torch
    except ImportError:
        return ""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare a figure with their own machine's."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpu": _gpu(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def write_record(workload: str, command: list[str], figures: dict[str, Any]) -> Path:
    """Append ``figures`` as a new dated record; the file's path."""
    now = datetime.now(UTC)
    record = {
        "workload": workload,
        "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": machine(),
        "command": " ".join(command),
        "figures": figures,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{now.strftime('%Y-%m-%dT%H%M%SZ')}-{workload}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path
