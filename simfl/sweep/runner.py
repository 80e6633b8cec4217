"""Run a sweep's cells in one process on one Ray runtime, skipping what is done.

Ray starts once per sweep (or the sweep joins a running cluster); each cell's simulation reuses
it, so Ray's cold start is paid once, not per cell. Flower builds each cell's actor pool from
that cell's ``client_resources``. A failed cell is recorded and the sweep goes on; an
interrupted one (killed process, lost node) is rerun from scratch next time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simfl.engine.runtime import RaySession, ray_session
from simfl.errors import ScenarioError
from simfl.run import run_scenario
from simfl.sweep.grid import Cell, Sweep
from simfl.sweep.store import SweepStore
from simfl.tracking.callbacks import RunCallback


@dataclass
class SweepReport:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    cell_seconds: dict[str, float] = field(default_factory=dict)
    round_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0


def check_single_runtime(sweep: Sweep) -> None:
    """All cells share one Ray runtime, so they must agree on how it is started."""
    init_args = {repr(sorted(c.scenario.resources.ray_init.items())) for c in sweep.cells}
    if len(init_args) > 1:
        raise ScenarioError(
            "key 'sweep': cells differ in resources.ray_init, but a sweep shares one Ray "
            "runtime; sweep resources.num_cpus / num_gpus (client_resources) instead"
        )


def run_cells(
    sweep: Sweep,
    cells: list[Cell],
    store: SweepStore,
    *,
    ray_address: str | None = None,
    wandb_mode: str | None = None,
    callbacks_for: Callable[[Cell], list[RunCallback]] | None = None,
    on_cell: Callable[[Cell, str], None] | None = None,
    ray_init: dict[str, Any] | None = None,
) -> SweepReport:
    """Run every cell of ``cells`` that is not done or running elsewhere.

    ``ray_init`` overrides the scenario's ``resources.ray_init`` (a SLURM task's budget).
    """
    check_single_runtime(sweep)
    store.write_manifest(sweep)
    report, start = SweepReport(), time.perf_counter()
    init_args = {**sweep.cells[0].scenario.resources.ray_init, **(ray_init or {})}
    todo = [c for c in cells if store.status(c) not in ("done", "running")]
    report.skipped = [c.cell_id for c in cells if c not in todo]
    if not todo:  # nothing to run: do not start Ray at all
        store.write_index(sweep)
        return report
    with ray_session(ray_address, init_args) as session:
        for cell in todo:
            if on_cell:
                on_cell(cell, "start")
            status = _run_one(cell, sweep, store, report, session, wandb_mode, callbacks_for)
            store.write_index(sweep)
            if on_cell:
                on_cell(cell, status)
    store.write_index(sweep)
    report.wall_seconds = time.perf_counter() - start
    return report


def _run_one(
    cell: Cell,
    sweep: Sweep,
    store: SweepStore,
    report: SweepReport,
    session: RaySession,
    wandb_mode: str | None,
    callbacks_for: Callable[[Cell], list[RunCallback]] | None,
) -> str:
    run_dir = store.begin(cell)
    started = time.perf_counter()
    try:
        outcome = run_scenario(
            cell.scenario,
            wandb_mode=wandb_mode,
            callbacks=callbacks_for(cell) if callbacks_for else None,
            run_dir=run_dir,
            run_name=f"{cell.label} [{cell.cell_id}]",
            wandb_group=sweep.sweep_id,
            session=session,
        )
    except Exception as error:  # a failed cell must not stop the sweep
        report.failed[cell.cell_id] = f"{type(error).__name__}: {error}"
        return "failed"
    finally:
        report.cell_seconds[cell.cell_id] = time.perf_counter() - started
        store.release(cell)
    store.complete(cell)
    report.ran.append(cell.cell_id)
    report.round_seconds[cell.cell_id] = _rounds_total(outcome.summary)
    return "done"


def _rounds_total(summary: dict[str, Any]) -> float:
    mean = summary["timings"].get("mean_round_s") or 0.0
    return float(mean) * summary["rounds_completed"]
