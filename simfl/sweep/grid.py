"""Expand a scenario's ``[sweep]`` table into cells with stable ids.

``[sweep]`` maps dotted scenario keys to lists of values (``"strategy.name" = ["fedavg",
"fedprox"]``); the special key ``seeds`` lists values of ``scenario.seed``. Every cell is the base
scenario with one value per key applied, validated like any scenario before anything runs, and
identified by the hash of its resolved scenario, so the same cell has the same id in every shard,
rerun and machine.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from simfl.config import Scenario, apply_override, read_toml_file, scenario_from_dict, set_dotted
from simfl.errors import ScenarioError

SEEDS_KEY = "seeds"


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its varying values and its validated scenario."""

    values: dict[str, Any]
    scenario: Scenario

    @cached_property
    def cell_id(self) -> str:
        """The scenario's hash (frozen, like the scenario): computed once, not at every look-up
        (hashing a resolved scenario is not free, and the store looks a cell's id up for every
        path and status)."""
        return self.scenario.full_hash()[:12]

    @property
    def label(self) -> str:
        """Human name from the varying values, e.g. ``strategy.name=fedprox,seed=1``."""
        return ",".join(f"{key}={_short(value)}" for key, value in self.values.items())


@dataclass(frozen=True)
class Sweep:
    name: str
    sweep_id: str
    axes: dict[str, list[Any]]
    cells: list[Cell]


def _short(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def read_sweep_file(path: str | Path, overrides: list[str] | None = None) -> tuple[dict, dict]:
    """The raw scenario (``--set`` applied) and its ``[sweep]`` table, split apart. A claim
    file's ``[[claims]]`` (:mod:`simfl.claims.catalogue`) is left out: it is a sweep too."""
    path = Path(path)
    raw = read_toml_file(path)
    raw.pop("claims", None)
    for item in overrides or []:
        apply_override(raw, item, path.name)
    grid = raw.pop("sweep", None)
    if not isinstance(grid, dict) or not grid:
        raise ScenarioError(f"{path.name}: no [sweep] table: nothing to sweep over")
    return raw, grid


def _check_axes(grid: dict[str, Any], source: str) -> dict[str, list[Any]]:
    axes: dict[str, list[Any]] = {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ScenarioError(f"{source}: key 'sweep.{key}': expected a non-empty list of values")
        axes[key] = values
    return axes


def expand(path: str | Path, overrides: list[str] | None = None) -> Sweep:
    """Validate every cell of the grid (the first bad one is reported) and return the sweep."""
    raw, grid = read_sweep_file(path, overrides)
    return expand_tables(raw, grid, Path(path).name)


def expand_tables(raw: dict[str, Any], grid: dict[str, Any], source: str) -> Sweep:
    """:func:`expand` for a scenario and its ``[sweep]`` table already read (``source``: the
    file's name, for messages)."""
    axes = _check_axes(grid, source)
    base = scenario_from_dict(json.loads(json.dumps(raw)), source)
    cells = []
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo, strict=True))
        cell_raw = json.loads(json.dumps(raw))
        label = ",".join(f"{k}={_short(v)}" for k, v in values.items())
        for key, value in values.items():
            target = "scenario.seed" if key == SEEDS_KEY else key
            set_dotted(cell_raw, target, value, f"{source}: sweep.{key}")
        scenario = scenario_from_dict(cell_raw, f"{source} [sweep cell {label}]")
        cells.append(Cell(values, scenario))
    ids = [cell.cell_id for cell in cells]
    if len(set(ids)) != len(ids):
        raise ScenarioError(f"{source}: [sweep] gives duplicate cells (repeated values?)")
    identity = _sweep_identity(base, axes)
    sweep_id = hashlib.sha256(
        json.dumps(identity, sort_keys=True, default=str).encode()
    ).hexdigest()
    name = f"{base.scenario.name}-{sweep_id[:8]}"
    return Sweep(name, name, axes, sorted(cells, key=lambda cell: cell.cell_id))


def _sweep_identity(base: Any, axes: dict[str, list[Any]]) -> dict[str, Any]:
    """What names the sweep's directory: the base scenario and the axes, but not its seeds, so
    a sweep run again with more seeds (``--seeds``) adds cells to the same directory."""
    scenario = base.identity()
    scenario["scenario"] = {k: v for k, v in scenario["scenario"].items() if k != "seed"}
    return {"base": scenario, "axes": {k: v for k, v in axes.items() if k != SEEDS_KEY}}


def seeds_override(path: str | Path, overrides: list[str], count: int) -> str:
    """``sweep.seeds=[...]`` for ``--seeds count``: the seeds the sweep lists (else its
    ``scenario.seed``), cut to ``count`` or extended by the next integers after the largest."""
    raw, grid = read_sweep_file(path, overrides)
    listed = grid.get(SEEDS_KEY) or [raw.get("scenario", {}).get("seed", 0)]
    if not isinstance(listed, list) or not all(type(seed) is int for seed in listed):
        raise ScenarioError(
            f"{Path(path).name}: key 'sweep.seeds': --seeds extends a list of integer seeds; "
            f"got {listed!r}"
        )
    return f"sweep.seeds={json.dumps(extended_seeds(listed, count))}"


def extended_seeds(listed: list[int], count: int) -> list[int]:
    """``listed`` cut to ``count`` seeds, or extended by the next integers after its largest."""
    seeds = list(dict.fromkeys(listed))[:count]
    following = max(listed) + 1
    while len(seeds) < count:
        seeds.append(following)
        following += 1
    return seeds


def parse_shard(spec: str) -> tuple[int, int]:
    """``i/n`` with 1 <= i <= n."""
    try:
        index, count = (int(part) for part in spec.split("/"))
    except ValueError:
        raise ScenarioError(f"--shard {spec!r}: expected i/n, e.g. 1/4") from None
    if count < 1 or not 1 <= index <= count:
        raise ScenarioError(f"--shard {spec!r}: need 1 <= i <= n (got i={index}, n={count})")
    return index, count


def shard_cells(cells: list[Cell], index: int, count: int) -> list[Cell]:
    """Round-robin over cells sorted by id: every cell in exactly one of the n shards."""
    return [cell for position, cell in enumerate(cells) if position % count == index - 1]
