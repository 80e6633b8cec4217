"""``simfl sweep``: expand, shard, run, resume and inspect a sweep from the command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simfl.atomic import write_text
from simfl.engine.gpu_packing import require_cuda
from simfl.engine.records import RoundRecord
from simfl.sweep.lease import DEFAULT_LEASE_S
from simfl.tracking.callbacks import RunCallback
from simfl.tracking.options import NestedMlflowOption, WandbOption, mlflow_flag, wandb_flag

if TYPE_CHECKING:
    from simfl.sweep.grid import Cell, Sweep
    from simfl.sweep.store import SweepStore

console = Console()


class CellRounds(RunCallback):
    """Advances one progress task over a cell's rounds."""

    def __init__(self, progress: Progress, task: int) -> None:
        self.progress, self.task = progress, task

    def on_round_end(self, record: RoundRecord) -> None:
        self.progress.update(self.task, completed=record.round)


def _select_shard(sweep: Sweep, shard: str | None) -> tuple[list[Cell], str]:
    from simfl.sweep.grid import parse_shard, shard_cells
    from simfl.sweep.slurm import shard_from_slurm

    spec = parse_shard(shard) if shard else shard_from_slurm()
    if spec is None:
        return sweep.cells, "all cells"
    index, count = spec
    return shard_cells(sweep.cells, index, count), f"shard {index}/{count}"


def _status_table(sweep: Sweep, store: SweepStore, cells: list[Cell]) -> Table:
    table = Table(title=f"sweep {sweep.sweep_id}: {store.root}")
    for column in ("cell", "values", "status", "final acc"):
        table.add_column(column)
    index = store.index(sweep).set_index("cell_id")
    for cell in cells:
        row = index.loc[cell.cell_id]
        accuracy = row["final_central_accuracy"]
        shown = f"{accuracy:.3f}" if accuracy == accuracy and accuracy is not None else "-"
        table.add_row(cell.cell_id, cell.label, row["status"], shown)
    return table


def sweep_command(
    scenario_file: Annotated[
        Path, typer.Argument(help="Scenario TOML file with a [sweep] table.", readable=False)
    ],
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override a base scenario key.")
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(help="Run shard i/n of the cells (default: SLURM_ARRAY_TASK_ID/_COUNT)."),
    ] = None,
    status: Annotated[
        bool, typer.Option("--status", help="Show cell states; run nothing.")
    ] = False,
    emit_slurm: Annotated[
        Path | None, typer.Option("--emit-slurm", help="Write an sbatch array script; run nothing.")
    ] = None,
    tasks: Annotated[
        int | None,
        typer.Option(min=1, help="Array tasks for --emit-slurm (default: one per cell)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address", help="Join this Ray cluster (default: RAY_ADDRESS, else start one)."
        ),
    ] = None,
    wandb: WandbOption = None,
    mlflow: NestedMlflowOption = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds",
            min=1,
            help="Run N seeds: the sweep's own, then the next integers; a finished sweep run "
            "again with more seeds runs only the new cells, in the same directory.",
        ),
    ] = None,
    ray_num_cpus: Annotated[
        int | None, typer.Option("--ray-num-cpus", min=1, help="CPUs Ray may use (a SLURM task's).")
    ] = None,
    ray_num_gpus: Annotated[
        int | None, typer.Option("--ray-num-gpus", min=0, help="GPUs Ray may use.")
    ] = None,
    ray_memory_gib: Annotated[
        float | None,
        typer.Option("--ray-memory-gib", min=0.5, help="Memory Ray may use (object store 30%)."),
    ] = None,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            min=1.0,
            help="Seconds after which a cell whose owner stopped renewing its lease (a killed "
            "or preempted job, any host) is taken over and resumed.",
        ),
    ] = DEFAULT_LEASE_S,
) -> None:
    """Run every cell of a scenario's sweep grid on one Ray runtime; rerun to resume."""
    wandb = wandb_flag(wandb)
    from simfl.sweep.grid import expand, seeds_override
    from simfl.sweep.slurm import concurrency_summary, ray_init_for, slurm_script, task_resources
    from simfl.sweep.store import SweepStore, sweep_root

    uri = mlflow_flag(mlflow)  # every cell's scenario keeps it (scenario.toml), hash-neutral
    overrides = [*(set_ or []), *([f"tracking.mlflow_uri={uri}"] if uri else [])]
    if seeds is not None:
        overrides.append(seeds_override(scenario_file, overrides, seeds))
    sweep = expand(scenario_file, overrides)
    store = SweepStore(sweep_root(sweep.cells[0].scenario.tracking.results_dir, sweep), lease)
    cells, which = _select_shard(sweep, shard)
    if emit_slurm:
        count = tasks or len(sweep.cells)
        script = slurm_script(
            sweep, scenario_file, overrides, count, store.root.resolve(), Path.cwd()
        )
        store.root.mkdir(parents=True, exist_ok=True)  # SLURM opens its logs there
        write_text(emit_slurm, script)
        console.print(
            f"wrote {emit_slurm}: `sbatch {emit_slurm}` runs {len(sweep.cells)} cells "
            f"in {count} tasks"
        )
        console.print("\n".join(concurrency_summary(sweep, task_resources(sweep))))
        return
    if status:
        console.print(_status_table(sweep, store, cells))
        console.print("\n".join(concurrency_summary(sweep, task_resources(sweep))))
        return
    address = ray_address or os.environ.get("RAY_ADDRESS")
    for cell in [] if address else cells:  # a GPU cell without CUDA here: refuse up front
        require_cuda(cell.scenario)
    ray_init = ray_init_for(ray_num_cpus, ray_num_gpus, ray_memory_gib)
    tracking = sweep.cells[0].scenario.tracking
    parent = _mlflow_parent(sweep, store) if tracking.mlflow_uri else None
    try:
        report = _run(sweep, cells, store, which, address, (wandb, parent), ray_init)
    except BaseException:
        if parent is not None:  # interrupted (or broken): the cells' runs say which
            parent.finish(store.root, "KILLED")
        raise
    if parent is not None:
        parent.finish(store.root, _sweep_state(sweep, store, report))
    console.print(_status_table(sweep, store, cells))
    mode = wandb or tracking.wandb_mode
    if mode != "disabled":
        from simfl.tracking.wandb_logger import log_table

        index = store.index(sweep)
        project, entity = tracking.wandb_project, tracking.wandb_entity
        log_table(index, "sweep-index", sweep.sweep_id, mode, store.root, project, entity)
    for cell_id, error in report.failed.items():
        console.print(f"[red]cell {cell_id} failed:[/] {error}", markup=True, highlight=False)
    console.print(
        f"sweep {sweep.sweep_id} ({which}): ran {len(report.ran)}, skipped {len(report.skipped)} "
        f"done or running, failed {len(report.failed)}; {report.wall_seconds:.1f} s; index: "
        f"{store.root / 'index.parquet'}"
    )
    if report.failed:
        raise typer.Exit(1)


def _mlflow_parent(sweep: Sweep, store: SweepStore):
    from simfl.tracking.mlflow_sweep import SweepRun

    return SweepRun.open(sweep.cells[0].scenario.tracking.mlflow_uri, sweep, store.root)


def _sweep_state(sweep: Sweep, store: SweepStore, report) -> str | None:
    """How the sweep's MLflow run ends: FAILED with a failed cell, FINISHED once every cell
    of the sweep is done, else still running (other shards, or a rerun, have cells left)."""
    if report.failed:
        return "FAILED"
    return "FINISHED" if all(store.is_done(cell) for cell in sweep.cells) else None


def _run(sweep: Sweep, cells: list[Cell], store: SweepStore, which: str, address, trackers,
         ray_init):  # fmt: skip
    from simfl.engine.interrupt import Interruption
    from simfl.sweep.runner import run_cells

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    interruption = Interruption()  # SIGINT, SIGTERM, SLURM's SIGUSR1: stop after the round
    with interruption.handling_signals(), Progress(*columns, console=console) as progress:
        overall = progress.add_task(f"sweep {sweep.sweep_id} ({which})", total=len(cells))
        tasks: dict[str, int] = {}

        def callbacks_for(cell: Cell) -> list[RunCallback]:
            task = progress.add_task(f"  {cell.label}", total=cell.scenario.scenario.rounds)
            tasks[cell.cell_id] = task
            return [CellRounds(progress, task)]

        def on_cell(cell: Cell, state: str) -> None:
            if state == "start":
                return
            progress.advance(overall)
            task = tasks.pop(cell.cell_id, None)
            if task is None:
                return
            if state == "done":  # counted by the overall bar, listed by the table at the end
                progress.remove_task(task)  # a live row per done cell: redrawn 10 times a second
            else:
                progress.update(task, description=f"  {cell.label}: {state}")

        done_before = sum(store.status(c) == "done" for c in cells)
        progress.update(overall, completed=done_before)
        return run_cells(
            sweep,
            cells,
            store,
            ray_address=address,
            wandb_mode=trackers[0],
            mlflow_parent_run=trackers[1].run_id if trackers[1] else None,
            callbacks_for=callbacks_for,
            on_cell=on_cell,
            ray_init=ray_init,
            interruption=interruption,
        )
