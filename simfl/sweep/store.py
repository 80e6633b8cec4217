"""A sweep's directory: one run directory per cell, completion markers, and the index.

``results/sweeps/<sweep-id>/cells/<cell-id>/`` is an ordinary run directory. A cell is done
only when its ``DONE`` marker exists, written atomically after everything else; a directory
without it is a cell that failed or was interrupted, and is cleared and rerun. ``index.parquet``
is rebuilt from the cell directories (the only source of truth), so shards that share the
directory, reruns and crashes never leave it inconsistent.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from simfl.atomic import write_json, write_table
from simfl.sweep.grid import Cell, Sweep

DONE, LOCK = "DONE", "LOCK"
STATUSES = ("done", "running", "failed", "interrupted", "pending")


def sweep_root(results_dir: str | Path, sweep: Sweep) -> Path:
    return Path(results_dir) / "sweeps" / sweep.sweep_id


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class SweepStore:
    root: Path

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

    def status(self, cell: Cell) -> str:
        """done, running (another live process holds the lock), failed, interrupted or pending."""
        directory = self.cell_dir(cell)
        if (directory / DONE).exists():
            return "done"
        if self.is_running_elsewhere(cell):
            return "running"
        summary = directory / "summary.json"
        if summary.exists() and json.loads(summary.read_text()).get("status") == "failed":
            return "failed"
        return "interrupted" if directory.exists() or self.lock_path(cell).exists() else "pending"

    def begin(self, cell: Cell) -> Path:
        """Clear what a failed or interrupted attempt left, and take the cell's lock."""
        directory = self.cell_dir(cell)
        if directory.exists():
            shutil.rmtree(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        lock = {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
        write_json(directory.parent / f".{cell.cell_id}.{LOCK}", lock)
        return directory

    def lock_path(self, cell: Cell) -> Path:
        return self.cell_dir(cell).parent / f".{cell.cell_id}.{LOCK}"

    def complete(self, cell: Cell) -> None:
        write_json(self.cell_dir(cell) / DONE, {"finished_at": _now()})

    def release(self, cell: Cell) -> None:
        self.lock_path(cell).unlink(missing_ok=True)

    def is_running_elsewhere(self, cell: Cell) -> bool:
        lock = self.lock_path(cell)
        if not lock.exists():
            return False
        owner = json.loads(lock.read_text())
        if owner.get("host") != socket.gethostname():
            return True
        return int(owner["pid"]) != os.getpid() and _pid_alive(int(owner["pid"]))

    def index(self, sweep: Sweep) -> pd.DataFrame:
        """One row per cell: id, label, varying values, status, key summary figures, error."""
        return pd.DataFrame([self._row(cell) for cell in sweep.cells])

    def _row(self, cell: Cell) -> dict[str, Any]:
        row: dict[str, Any] = {"cell_id": cell.cell_id, "label": cell.label}
        row.update({key: _scalar(value) for key, value in cell.values.items()})
        row["status"] = self.status(cell)
        summary_path = self.cell_dir(cell) / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
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


def _scalar(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
