"""Read sweep directories and plain run directories into one set of cells, rounds and clients.

Sources merge by *cell values* (the swept keys and the seed), not by sweep id, so shards of one
sweep, a second sweep that adds seeds, and single ``simfl run`` directories all land in one
table; where two sources hold the same cell, a completed copy wins. A swept key that one source
does not vary is read from each cell's resolved ``scenario.toml``, so every cell has a value for
every axis.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simfl.errors import ScenarioError

SEED_AXIS = "seeds"  # the sweep key that lists seeds
SEED = "seed"  # the cells column holding each cell's seed
IGNORED_RUN_KEYS = ("scenario.seed", "scenario.name", "scenario.description", "tracking.")


@dataclass(frozen=True)
class CellSource:
    """One cell as found on disk, before merging."""

    cell_id: str
    label: str
    directory: Path
    values: dict[str, Any]
    done: bool
    status: str
    group: str  # the W&B group its run was logged to


@dataclass(frozen=True)
class Results:
    """``cells``: one row per cell (id, label, status, seed, one column per axis);
    ``rounds``: ``metrics.parquet`` rows of done cells; ``clients``: ``clients.parquet`` rows."""

    sources: list[str]
    axes: dict[str, list[Any]]
    cells: pd.DataFrame
    rounds: pd.DataFrame
    clients: pd.DataFrame

    @property
    def missing(self) -> pd.DataFrame:
        return self.cells[self.cells["status"] != "done"]

    @property
    def seeds(self) -> list[Any]:
        return sorted(self.cells[SEED].dropna().unique().tolist())


def scenario_value(scenario: dict, dotted: str) -> Any:
    """The value at ``a.b.c`` in a resolved scenario, or None where it has no such key."""
    node: Any = scenario
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _read_scenario(directory: Path) -> dict:
    path = directory / "scenario.toml"
    return tomllib.loads(path.read_text()) if path.exists() else {}


def _summary(directory: Path) -> dict:
    path = directory / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _sweep_cells(directory: Path) -> tuple[str, dict[str, list], list[CellSource]]:
    manifest = json.loads((directory / "sweep.json").read_text())
    cells = []
    for cell in manifest["cells"]:
        cell_dir = directory / "cells" / cell["cell_id"]
        done = (cell_dir / "DONE").exists()
        status = "done" if done else _summary(cell_dir).get("status", "pending")
        values = dict(cell["values"])
        if SEED_AXIS in values:
            values[SEED] = values.pop(SEED_AXIS)
        cells.append(
            CellSource(
                cell["cell_id"], cell["label"], cell_dir, values, done, status, manifest["sweep_id"]
            )
        )
    return manifest["sweep_id"], dict(manifest["axes"]), cells


def _run_cell(directory: Path) -> CellSource:
    status = _summary(directory).get("status", "pending")
    done = status == "completed"
    scenario = _read_scenario(directory)
    group = scenario_value(scenario, "tracking.wandb_group") or scenario_value(
        scenario, "scenario.name"
    )
    return CellSource(
        directory.name, directory.name, directory, {}, done, "done" if done else status, group
    )


def _leaves(node: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_leaves(value, f"{name}."))
        else:
            out[name] = value
    return out


def _differing_keys(scenarios: list[dict]) -> dict[str, list]:
    """Scenario keys whose values differ among plain runs: their axes (seed and names excluded)."""
    flat = [_leaves(s) for s in scenarios]
    keys = sorted(set().union(*flat)) if flat else []
    axes = {}
    for key in keys:
        if key.startswith(IGNORED_RUN_KEYS):
            continue
        values = [_hashable(f.get(key)) for f in flat]
        if len(set(values)) > 1:
            axes[key] = list(dict.fromkeys(values))
    return axes


def _hashable(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def _collect(directories: list[Path]) -> tuple[list[str], dict[str, list], list[CellSource]]:
    sources, axes, cells, runs = [], {}, [], []
    for directory in map(Path, directories):
        if (directory / "sweep.json").exists():
            sweep_id, sweep_axes, sweep_cells = _sweep_cells(directory)
            sources.append(sweep_id)
            for axis, values in sweep_axes.items():
                if axis != SEED_AXIS:
                    merged = axes.setdefault(axis, [])
                    merged += [v for v in values if v not in merged]
            cells += sweep_cells
        elif (directory / "summary.json").exists() or (directory / "metrics.parquet").exists():
            sources.append(directory.name)
            runs.append(_run_cell(directory))
        else:
            raise ScenarioError(
                f"{directory}: neither a sweep directory (sweep.json) nor a run directory "
                "(summary.json); pass results/sweeps/<sweep-id> or results/<run>"
            )
    if runs:
        for axis, values in _differing_keys([_read_scenario(r.directory) for r in runs]).items():
            merged = axes.setdefault(axis, [])
            merged += [v for v in values if v not in merged]
    return sources, axes, cells + runs


def _complete_values(cell: CellSource, axes: list[str]) -> dict[str, Any]:
    """The cell's value for every axis and its seed, from the scenario where not swept."""
    values = {key: _hashable(value) for key, value in cell.values.items()}
    missing = [key for key in [*axes, SEED] if key not in values]
    if missing:
        scenario = _read_scenario(cell.directory)
        for key in missing:
            dotted = "scenario.seed" if key == SEED else key
            values[key] = _hashable(scenario_value(scenario, dotted))
    return values


def _read_cell_table(cell: CellSource, name: str) -> pd.DataFrame | None:
    path = cell.directory / f"{name}.parquet"
    if not (cell.done and path.exists()):
        return None
    frame = pd.read_parquet(path)
    frame.insert(0, "cell_id", cell.cell_id)
    return frame


def load_results(directories: list[Path]) -> Results:
    """Every cell of every source, merged by cell values; a completed copy of a cell wins."""
    sources, axes, found = _collect(directories)
    merged: dict[tuple, tuple[CellSource, dict]] = {}
    for cell in found:
        values = _complete_values(cell, list(axes))
        key = tuple(sorted((k, json.dumps(v, default=str)) for k, v in values.items()))
        if key in merged and merged[key][0].done:
            continue
        merged[key] = (cell, values)
    rows, rounds, clients = [], [], []
    for cell, values in merged.values():
        rows.append(
            {
                "cell_id": cell.cell_id,
                "label": cell.label,
                "status": cell.status,
                "directory": str(cell.directory),
                "group": cell.group,
                **values,
            }
        )
        for name, into in (("metrics", rounds), ("clients", clients)):
            table = _read_cell_table(cell, name)
            if table is not None:
                into.append(table)
    columns = ["cell_id", "label", "status", "directory", "group", SEED, *axes]
    cells = pd.DataFrame(rows, columns=columns)
    concat = lambda frames: pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()  # noqa: E731
    return Results(sorted(set(sources)), axes, cells, concat(rounds), concat(clients))
