"""``summary.json``: final and best metrics, timings, communication, versions and provenance."""

from __future__ import annotations

import math
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

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


def _clean(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def summarize(
    info: RunInfo,
    history: History,
    status: str,
    timings: dict[str, float],
    finished_at: str,
    error: str | None = None,
) -> dict[str, Any]:
    rounds = [r for r in history.rounds if r.round > 0]
    last = history.rounds[-1] if history.rounds else None
    accuracies = [r.central_accuracy for r in history.rounds]
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
        "final": {
            "central_accuracy": _clean(last.central_accuracy) if last else None,
            "central_loss": _clean(last.central_loss) if last else None,
            "train_loss": _clean(last.train_loss) if last else None,
            "fed_accuracy_mean": _clean(last.fed_accuracy_mean) if last else None,
            "fed_accuracy_worst10": _clean(last.fed_accuracy_worst10) if last else None,
            "pers_accuracy_mean": _clean(last.pers_accuracy_mean) if last else None,
            "pers_accuracy_worst10": _clean(last.pers_accuracy_worst10) if last else None,
            "central_wer": _clean(last.central_wer) if last else None,
            "central_cer": _clean(last.central_cer) if last else None,
            "fed_wer_mean": _clean(last.fed_wer_mean) if last else None,
        },
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
        "partition": info.partition_scores,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "error": error,
    }
