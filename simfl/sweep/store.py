"""A sweep's directory: one run directory per cell, completion markers, leases, the index.

``results/sweeps/<sweep-id>/cells/<cell-id>/`` is an ordinary run directory. A cell is done
only when its ``DONE`` marker exists, written durably after everything else and *before* the
cell's lease is released, so there is never a moment when a finished cell has neither. A cell
runs only under its lease (:mod:`simfl.sweep.lease`: exclusive, renewed by a heartbeat, taken
over when its owner stops renewing it), and whether it is done is checked again once the lease
is held, so any number of processes may run the same sweep: each cell runs exactly once. A cell
without ``DONE`` was interrupted or failed: it resumes from its checkpoint if it has one, else
it is cleared and rerun. ``index.parquet`` is rebuilt from the cell directories (the only
source of truth), so shards that share the directory, reruns and crashes never leave it
inconsistent.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simfl.atomic import write_json, write_table
from simfl.sweep.grid import Cell, Sweep
from simfl.sweep.lease import DEFAULT_LEASE_S, CellLease, read_owner

if TYPE_CHECKING:
    import pandas as pd

DONE, LOCK = "DONE", "LOCK"
STATUSES = ("done", "running", "failed", "interrupted", "pending")


def sweep_root(results_dir: str | Path, sweep: Sweep) -> Path:
    return Path(results_dir) / "sweeps" / sweep.sweep_id


@dataclass(frozen=True)
class SweepStore:
    root: Path
    lease_s: float = DEFAULT_LEASE_S

    def cell_dir(self, cell: Cell) -> Path:
        return self.root / "cells" / cell.cell_id

    def write_manifest(self, sweep: Sweep) -> None:
        """What the sweep is (its axes and cells); identical for every shard that writes it."""
        write_json(
            self.root / "sweep.json",
            {
                "sweep_id": sweep.sweep_id,
                "axes": sweep.axes,
                "cells": [
                    {"cell_id": c.cell_id, "label": c.label, "values": c.values}
                    for c in sweep.cells
                ],
            },
        )

    def is_done(self, cell: Cell) -> bool:
        return (self.cell_dir(cell) / DONE).exists()

    def status(self, cell: Cell) -> str:
        """done, running (a live lease), failed, interrupted or pending."""
        directory = self.cell_dir(cell)
        if self.is_done(cell):
            return "done"
        if self.is_running_elsewhere(cell):
            return "running"
        if _summary(directory).get("status") == "failed":
            return "failed"
        return "interrupted" if directory.exists() or self.lock_path(cell).exists() else "pending"

    def claim(self, cell: Cell) -> CellLease | None:
        """The cell's lease, or None while another live process holds it."""
        return CellLease.acquire(self.lock_path(cell), self.lease_s)

    def prepare(self, cell: Cell) -> tuple[Path, bool]:
        """Under the cell's lease: its run directory, and whether to resume a checkpoint there.

        Without a checkpoint, what an interrupted or failed attempt left is cleared.
        """
        from simfl.engine.checkpoint import latest_checkpoint_dir  # torch: only when running

        directory = self.cell_dir(cell)
        resumable = (directory / "scenario.toml").is_file() and latest_checkpoint_dir(directory)
        if not resumable and directory.exists():
            shutil.rmtree(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        return directory, bool(resumable)

    def lock_path(self, cell: Cell) -> Path:
        """``locks/<cell-id>.LOCK`` (beside ``cells/``, so ``cells/*`` holds only cells)."""
        return self.root / "locks" / f"{cell.cell_id}.{LOCK}"

    def complete(self, cell: Cell) -> None:
        """The ``DONE`` marker, fsynced with its directory (call while holding the lease)."""
        write_json(self.cell_dir(cell) / DONE, {"finished_at": _now()})

    def is_running_elsewhere(self, cell: Cell) -> bool:
        owner = read_owner(self.lock_path(cell))
        return owner is not None and not owner.is_stale()

    def index(self, sweep: Sweep) -> pd.DataFrame:
        """One row per cell: id, label, varying values, status, key summary figures, error."""
        import pandas as pd  # not before the first index: a sweep starts Ray first

        return pd.DataFrame([self._row(cell) for cell in sweep.cells])

    def _row(self, cell: Cell) -> dict[str, Any]:
        row: dict[str, Any] = {"cell_id": cell.cell_id, "label": cell.label}
        row.update({key: _scalar(value) for key, value in cell.values.items()})
        row["status"] = self.status(cell)
        summary = _summary(self.cell_dir(cell))
        row["final_central_accuracy"] = summary.get("final", {}).get("central_accuracy")
        row["best_central_accuracy"] = summary.get("best", {}).get("central_accuracy")
        row["mean_round_s"] = summary.get("timings", {}).get("mean_round_s")
        row["concurrent_clients"] = summary.get("throughput", {}).get("concurrent_clients")
        row["client_updates_per_s"] = summary.get("throughput", {}).get("client_updates_per_s")
        row["error"] = summary.get("error") if row["status"] == "failed" else None
        return row

    def write_index(self, sweep: Sweep) -> pd.DataFrame:
        frame = self.index(sweep)
        write_table(self.root / "index", frame)
        return frame


def _summary(directory: Path) -> dict[str, Any]:
    """A cell's ``summary.json``; empty if it has none (or an unreadable one)."""
    try:
        summary = json.loads((directory / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def _scalar(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
