"""Run a sweep's cells in one process on one Ray runtime, skipping what is done.

Ray starts once per sweep (or the sweep joins a running cluster), in the background while the sweep
imports torch and Flower; each cell's simulation reuses it, so Ray's cold start is paid once, not
per cell. Flower builds each cell's actor pool from that cell's ``client_resources``. A cell runs
only under its lease and only if it is still not done once the lease is held; ``DONE`` is written
before the lease is released. A failed cell is recorded and the sweep goes on; an interrupted one
(killed process, lost node, preempted job) resumes from its last checkpoint when its lease expires.
After a pass over the cells the process looks again for cells whose owner died meanwhile, so
processes sharing a sweep finish each other's interrupted cells.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simfl.engine.interrupt import Interruption, RunInterrupted
from simfl.engine.ray_start import RayStart
from simfl.errors import ResumableError, ScenarioError
from simfl.sweep.grid import Cell, Sweep
from simfl.sweep.store import SweepStore
from simfl.tracking.callbacks import RunCallback

if TYPE_CHECKING:
    from simfl.engine.runtime import RaySession


@dataclass
class SweepReport:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    cell_seconds: dict[str, float] = field(default_factory=dict)
    round_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0


@dataclass
class _SweepPass:
    """What every cell of one pass shares: the sweep, its store, the report and the runtime
    (``session``: set once Ray has started)."""

    sweep: Sweep
    store: SweepStore
    report: SweepReport
    session: RaySession | None
    wandb_mode: str | None
    mlflow_parent_run: str | None
    callbacks_for: Callable[[Cell], list[RunCallback]] | None
    on_cell: Callable[[Cell, str], None] | None
    interruption: Interruption


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
    interruption: Interruption | None = None,
    mlflow_parent_run: str | None = None,
) -> SweepReport:
    """Run every cell of ``cells`` that is not done and not held by another live process.

    ``ray_init`` overrides the scenario's ``resources.ray_init`` (a SLURM task's budget).
    ``mlflow_parent_run`` is the sweep's MLflow run, the cells' runs nest under it.
    ``interruption`` (whose handlers the caller installs) stops the sweep: the running cell
    after its round, checkpointed and marked interrupted, its lease released, the index
    written; :class:`RunInterrupted` then says how to resume.
    """
    interruption = interruption or Interruption()
    try:
        pass_ = _SweepPass(sweep, store, SweepReport(), None, wandb_mode, mlflow_parent_run,
                           callbacks_for, on_cell, interruption)  # fmt: skip
        return _run_cells(pass_, cells, ray_address, ray_init)
    except RunInterrupted:
        with interruption.simulating():  # a second signal must not cut the index in half
            store.write_index(sweep)
        raise


def _run_cells(
    run: _SweepPass, cells: list[Cell], ray_address: str | None, ray_init: dict[str, Any] | None
) -> SweepReport:
    sweep, store, report = run.sweep, run.store, run.report
    check_single_runtime(sweep)
    store.write_manifest(sweep)
    start = time.perf_counter()
    init_args = {**sweep.cells[0].scenario.resources.ray_init, **(ray_init or {})}
    if not _claimable(cells, store, attempted=set()):  # nothing to run: do not start Ray at all
        store.write_index(sweep)
        report.skipped = [c.cell_id for c in cells]
        return report
    attempted: set[str] = set()
    # Ray starts in the background while this thread imports torch and Flower (about as long).
    with RayStart(ray_address, init_args, background=True) as ray_start:
        import simfl.run  # noqa: F401 - torch, datasets: imported while Ray starts
        from simfl.engine.runtime import ray_session

        with ray_session(ray_address, init_args, start=ray_start) as session:
            run.session = session
            while todo := _claimable(cells, store, attempted):
                for cell in todo:
                    attempted.add(cell.cell_id)
                    status = _claim_and_run(cell, run)
                    if status != "skipped":
                        store.write_index(sweep)
    store.write_index(sweep)
    report.skipped = [
        c.cell_id for c in cells if c.cell_id not in report.ran and c.cell_id not in report.failed
    ]
    report.wall_seconds = time.perf_counter() - start
    return report


def _claimable(cells: list[Cell], store: SweepStore, attempted: set[str]) -> list[Cell]:
    """Cells not done, not held by a live owner, and not yet tried by this process."""
    return [
        c
        for c in cells
        if c.cell_id not in attempted and not store.is_done(c) and not store.is_running_elsewhere(c)
    ]


def _claim_and_run(cell: Cell, run: _SweepPass) -> str:
    """Take the cell's lease, check again that it is not done, run it, mark it done, release."""
    store, report, on_cell, uncut = run.store, run.report, run.on_cell, run.interruption.uncut
    with uncut():
        lease = store.claim(cell)
    if lease is None:
        return "skipped"  # another process claimed it since we looked
    try:
        if store.is_done(cell):
            return "skipped"  # finished by another process before we claimed it
        if on_cell:
            on_cell(cell, "start")
        status = _run_one(cell, run)
        if status == "done" and lease.lost.is_set():
            status = "failed"  # our lease expired and another process took the cell over
            report.ran.remove(cell.cell_id)
            report.failed[cell.cell_id] = "lease lost while running (process paused too long?)"
        if status == "done":
            with uncut():
                store.complete(cell)  # DONE before the lease goes
    finally:
        with run.interruption.simulating():  # released whole, even on a second signal
            lease.release()
    if on_cell:
        on_cell(cell, status)
    return status


def _run_one(cell: Cell, run: _SweepPass) -> str:
    from simfl.run import RunOptions, run_scenario

    report = run.report
    run_dir, resume = run.store.prepare(cell)
    started = time.perf_counter()
    try:
        options = RunOptions(
            wandb_mode=run.wandb_mode,
            trackers=run.callbacks_for(cell) if run.callbacks_for else (),
            run_dir=run_dir,
            run_name=f"{cell.label} [{cell.cell_id}]",
            wandb_group=run.sweep.sweep_id,
            mlflow_parent_run=run.mlflow_parent_run,
            session=run.session,
            resume=resume,
            interruption=run.interruption,
        )
        outcome = run_scenario(cell.scenario, options)
    except RunInterrupted as stop:  # checkpointed and marked interrupted: the sweep stops
        line = f"interrupted in cell {cell.cell_id} {stop.where}: resume with the same simfl sweep"
        raise RunInterrupted(stop.signum, f"{line} command", stop.where) from None
    except Exception as error:  # a failed cell must not stop the sweep
        if isinstance(error, ResumableError):  # the sweep resumes the cell, not simfl run
            error.resume_with = "the same simfl sweep command"
        report.failed[cell.cell_id] = f"{type(error).__name__}: {error}"
        return "failed"
    finally:
        report.cell_seconds[cell.cell_id] = time.perf_counter() - started
    report.ran.append(cell.cell_id)
    report.round_seconds[cell.cell_id] = _rounds_total(outcome.summary)
    return "done"


def _rounds_total(summary: dict[str, Any]) -> float:
    mean = summary["timings"].get("mean_round_s") or 0.0
    return float(mean) * summary["rounds_completed"]
