"""Run the claim files' sweeps and turn their cells into verdicts (``simfl claims``)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pandas as pd
from rich.console import Console

from simfl.claims.catalogue import ClaimFile, ClaimSpec
from simfl.claims.output import method_note, write
from simfl.claims.verdict import contrast_per_seed, verdicts
from simfl.config import apply_override
from simfl.report import outcomes
from simfl.sweep.grid import SEEDS_KEY, Sweep, expand_tables, extended_seeds
from simfl.sweep.store import SweepStore, sweep_root

console = Console()


def claim_sweep(claim_file: ClaimFile, seeds: int, overrides: list[str]) -> Sweep:
    """The file's sweep with ``overrides`` and ``seeds`` seeds (its own listed seeds first)."""
    raw = copy.deepcopy(claim_file.raw)
    for item in overrides:
        apply_override(raw, item, claim_file.path.name)
    grid = dict(claim_file.grid)
    listed = grid.get(SEEDS_KEY) or [raw.get("scenario", {}).get("seed", 0)]
    grid[SEEDS_KEY] = extended_seeds(listed, seeds)
    return expand_tables(raw, grid, claim_file.path.name)


def done_rounds(sweep: Sweep, store: SweepStore) -> dict[str, pd.DataFrame]:
    """Every done cell's round records (``metrics.parquet``, by round), read once per file."""
    return {
        cell.cell_id: pd.read_parquet(store.cell_dir(cell) / "metrics.parquet")
        .sort_values("round")
        .reset_index(drop=True)
        for cell in sweep.cells
        if store.is_done(cell)
    }


def cell_values(rounds: dict[str, pd.DataFrame], claim: ClaimSpec) -> dict[str, float]:
    """The claim's outcome for every done cell."""
    return {
        cell: outcomes.value(frame, claim.outcome, claim.target) for cell, frame in rounds.items()
    }


def _mlflow_parent(sweep: Sweep, store: SweepStore):
    """The MLflow run of a claim file's sweep, where its scenario tracks to MLflow."""
    uri = sweep.cells[0].scenario.tracking.mlflow_uri
    if not uri:
        return None
    from simfl.tracking.mlflow_sweep import SweepRun

    return SweepRun.open(uri, sweep, store.root)


def run_claims(
    files: list[ClaimFile],
    seeds: int,
    overrides: list[str],
    quick: bool,
    alpha: float,
    wandb: str | None,
    run_id: str,
) -> Path:
    """Run every file's cells (resuming), write the verdicts; their directory."""
    from simfl.engine.interrupt import Interruption, RunInterrupted
    from simfl.sweep.runner import run_cells

    sweeps = [claim_sweep(claim_file, seeds, overrides) for claim_file in files]  # all checked
    interruption = Interruption()
    contrasts, notes = [], []
    started = time.perf_counter()
    with interruption.handling_signals():
        for claim_file, sweep in zip(files, sweeps, strict=True):
            results_dir = sweep.cells[0].scenario.tracking.results_dir
            store = SweepStore(sweep_root(results_dir, sweep))
            parent = _mlflow_parent(sweep, store)
            try:
                report = run_cells(
                    sweep, sweep.cells, store, wandb_mode=wandb, interruption=interruption,
                    mlflow_parent_run=parent.run_id if parent else None,
                )  # fmt: skip
            except RunInterrupted as stop:  # checkpointed: the same command resumes it
                if parent is not None:
                    parent.finish(store.root, "KILLED")
                line = f"{claim_file.path.name}: {stop.line.replace('simfl sweep', 'simfl claims')}"
                raise RunInterrupted(stop.signum, line, stop.where) from None
            if parent is not None:
                parent.finish(store.root, "FAILED" if report.failed else "FINISHED")
            line = (
                f"{claim_file.path.name}: {len(sweep.cells)} cells in {store.root} (ran "
                f"{len(report.ran)}, done before {len(report.skipped)}, failed "
                f"{len(report.failed)}; {report.wall_seconds:.0f} s)"
            )
            console.print(line, markup=False, highlight=False)
            notes.append(line)
            rounds = done_rounds(sweep, store)
            for claim in claim_file.claims:
                values = cell_values(rounds, claim)
                contrasts.append((claim, contrast_per_seed(claim, sweep.cells, values)))
    found = verdicts(contrasts, alpha, quick=quick)
    total = time.perf_counter() - started
    notes.insert(0, method_note(seeds, alpha, 0.95))
    minutes = f" ({total / 60:.0f} min)" if total >= 60 else ""
    notes.append(f"Wall time of this invocation: {total:.0f} s{minutes}.")
    if quick:
        notes.append(f"--quick: {seeds} seeds of a few rounds: a smoke run; no verdict is claimed.")
    out_dir = Path(sweeps[0].cells[0].scenario.tracking.results_dir) / "claims" / run_id
    write(out_dir, found, notes, f"simfl claims: {run_id}")
    return out_dir
