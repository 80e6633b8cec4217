"""Amortized per-cell start-up: one-runtime sweep vs one `simfl run` process per cell.

Runs the same cells twice, side by side in one invocation: once as ``simfl sweep`` (one process,
Ray started once) and once as separate ``simfl run`` processes. For each, the per-cell start-up
is (wall time - the cells' round times) / cells: everything a cell costs beyond its rounds
(process start, imports, Ray, actors, data loading from cache, result writing).

Usage: ``simfl bench sweep [--cells N] [--rounds R]`` (defaults: 4 cells of the quickstart,
3 rounds each). The data cache is warmed first so neither side pays data generation.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
from simfl_process import REPO, add_cache_and_json_arguments, run_overrides, set_flags, simfl

QUICKSTART = REPO / "scenarios" / "quickstart.toml"


def round_seconds(run_dirs: list[Path]) -> float:
    total = 0.0
    for run_dir in run_dirs:
        metrics = pd.read_parquet(run_dir / "metrics.parquet")
        total += float(metrics["round_seconds"].sum())  # includes round 0 (initial evaluation)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    add_cache_and_json_arguments(parser)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="simfl-bench-sweep-"))
    common = run_overrides(args.rounds, args.cache_dir)
    seeds = list(range(args.cells))
    scenario = work / "sweep.toml"
    scenario.write_text(QUICKSTART.read_text() + f"\n[sweep]\nseeds = {seeds}\n")
    sets = set_flags(common)
    simfl("data", "prepare", str(QUICKSTART), *sets, cwd=work)  # warm the cache for both

    start = time.perf_counter()
    simfl(
        "sweep", str(scenario), *sets, "--set", f"tracking.results_dir={work / 'sweep'}", cwd=work
    )
    sweep_wall = time.perf_counter() - start
    sweep_dirs = sorted((work / "sweep" / "sweeps").glob("*/cells/*"))

    start = time.perf_counter()
    for seed in seeds:
        simfl(
            "run",
            str(QUICKSTART),
            *sets,
            "--set",
            f"scenario.seed={seed}",
            "--set",
            f"tracking.results_dir={work / 'runs'}",
            cwd=work,
        )
    runs_wall = time.perf_counter() - start
    run_dirs = sorted((work / "runs").iterdir())

    sweep_startup = (sweep_wall - round_seconds(sweep_dirs)) / args.cells
    runs_startup = (runs_wall - round_seconds(run_dirs)) / args.cells
    figures = {
        "cells": args.cells,
        "rounds_per_cell": args.rounds,
        "sweep_wall_s": sweep_wall,
        "separate_runs_wall_s": runs_wall,
        "sweep_startup_per_cell_s": sweep_startup,
        "separate_runs_startup_per_cell_s": runs_startup,
        "startup_ratio_runs_over_sweep": runs_startup / sweep_startup,
    }
    for key, value in figures.items():
        print(f"{key:34s} {value:.2f}" if isinstance(value, float) else f"{key:34s} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
