"""``summary.json``: final and best metrics, timings, communication, versions and provenance."""

from __future__ import annotations

import math
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from simfl.engine.records import TIMING_COLUMNS
from simfl.tracking.callbacks import History, RunInfo

PACKAGES = ("simfl", "flwr", "ray", "torch", "numpy", "datasets", "transformers", "pandas", "wandb")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str:
    """The commit of the simfl checkout that ran, with ``+dirty`` for uncommitted changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


#: Always in ``summary.json``'s ``final`` (None when a run has no such metric), in this order.
CURATED_FINAL = (
    "central_accuracy",
    "central_loss",
    "train_loss",
    "fed_accuracy_mean",
    "fed_accuracy_worst10",
    "pers_accuracy_mean",
    "pers_accuracy_worst10",
)


def _clean(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def final_metrics(history: History) -> dict[str, float | None]:
    """Every metric of the last round (timings aside), NaN as None; the curated ones first."""
    last = history.rounds[-1] if history.rounds else None
    names = list(CURATED_FINAL)
    if last is not None:
        names += [name for name in last.metrics if name not in names]
    return {
        name: _clean(last.get(name)) if last else None
        for name in names
        if name not in TIMING_COLUMNS
    }


def summarize(
    info: RunInfo,
    history: History,
    status: str,
    timings: dict[str, float],
    finished_at: str,
    error: str | None = None,
) -> dict[str, Any]:
    rounds = [r for r in history.rounds if r.round > 0]
    accuracies = [r.get("central_accuracy") for r in history.rounds]
    best = (
        int(np.nanargmax(accuracies)) if accuracies and not np.all(np.isnan(accuracies)) else None
    )
    round_times = [r.round_seconds for r in rounds]
    return {
        "status": status,
        **info.header(),
        "finished_at": finished_at,
        "rounds_planned": info.scenario.scenario.rounds,
        "rounds_completed": len([r for r in rounds if r.clients_succeeded > 0]),
        "stopped": history.stop_reason,
        "final": final_metrics(history),
        "best": {
            "central_accuracy": _clean(accuracies[best]) if best is not None else None,
            "round": history.rounds[best].round if best is not None else None,
        },
        "chance_accuracy": 1.0 / len(info.label_names),
        "timings": {
            **timings,
            "mean_round_s": float(np.mean(round_times)) if round_times else None,
        },
        "communication": {
            "bytes_down": int(sum(r.bytes_down for r in rounds)),
            "bytes_up": int(sum(r.bytes_up for r in rounds)),
        },
        "clients_failed": int(sum(r.clients_failed + r.eval_clients_failed for r in rounds)),
        # Client actors that died and were replaced, their clients rerun (failures.json).
        "infrastructure_failures": sum(f.kind == "infrastructure" for f in history.failures),
        "partition": info.partition_scores,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "error": error,
    }
