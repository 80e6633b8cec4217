"""Read one or more sweep directories (shards of one sweep merge) into two tables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from simfl.errors import ScenarioError

SEED_AXIS = "seeds"


@dataclass(frozen=True)
class SweepResults:
    """``cells``: one row per cell of the grid; ``rounds``: one row per round of done cells."""

    sweep_ids: list[str]
    axes: dict[str, list]
    cells: pd.DataFrame
    rounds: pd.DataFrame

    @property
    def group_axes(self) -> list[str]:
        """Everything the report groups by: every axis but the seed."""
        return [axis for axis in self.axes if axis != SEED_AXIS]

    @property
    def missing(self) -> pd.DataFrame:
        return self.cells[self.cells["status"] != "done"]


def _cell_row(directory: Path, cell: dict) -> dict:
    cell_dir = directory / "cells" / cell["cell_id"]
    summary_path = cell_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    done = (cell_dir / "DONE").exists()
    status = "done" if done else summary.get("status", "pending")
    row = {"cell_id": cell["cell_id"], "label": cell["label"], "status": status}
    row.update({axis: _scalar(value) for axis, value in cell["values"].items()})
    if done:
        row.update(
            {
                "best_central_accuracy": summary["best"]["central_accuracy"],
                "mean_round_s": summary["timings"]["mean_round_s"],
                "bytes_total": summary["communication"]["bytes_down"]
                + summary["communication"]["bytes_up"],
            }
        )
    return row


def _scalar(value):
    return json.dumps(value) if isinstance(value, list | dict) else value


def load_sweeps(directories: list[Path]) -> SweepResults:
    cells, rounds, axes, ids = {}, [], {}, []
    for directory in directories:
        manifest_path = Path(directory) / "sweep.json"
        if not manifest_path.exists():
            raise ScenarioError(f"{directory}: not a sweep directory (no sweep.json)")
        manifest = json.loads(manifest_path.read_text())
        ids.append(manifest["sweep_id"])
        for axis, values in manifest["axes"].items():
            axes.setdefault(axis, values)
        for cell in manifest["cells"]:
            row = _cell_row(Path(directory), cell)
            if cell["cell_id"] in cells and cells[cell["cell_id"]]["status"] == "done":
                continue  # another shard's copy already holds the completed cell
            cells[cell["cell_id"]] = row
            metrics = Path(directory) / "cells" / cell["cell_id"] / "metrics.parquet"
            if row["status"] == "done" and metrics.exists():
                frame = pd.read_parquet(metrics)
                frame.insert(0, "cell_id", cell["cell_id"])
                rounds.append(frame)
    rounds_frame = pd.concat(rounds, ignore_index=True) if rounds else pd.DataFrame()
    return SweepResults(sorted(set(ids)), axes, pd.DataFrame(list(cells.values())), rounds_frame)
