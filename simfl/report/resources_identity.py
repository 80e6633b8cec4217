"""Whether a sweep's cells that differ only in ``[resources]`` gave the same numbers.

A reader of a ``client_resources`` sweep assumes the resources change speed, not results;
simfl makes that so on CPUs (each client trains with ``train.intra_op_threads`` torch threads,
not one per CPU it is given), and the report checks it cell by cell instead of assuming it.
"""

from __future__ import annotations

import re

import pandas as pd

from simfl.report.load import SEED, SEED_AXIS, Results

#: Columns that measure wall-clock time: they differ between identical runs.
WALL_CLOCK = re.compile(r"seconds|_s$|-s$|per_s")


def resources_note(results: Results) -> str | None:
    """One line for a sweep over ``resources.*`` keys: are the cells that differ only in them
    (same other values, same seed) identical in every round's metrics but wall-clock ones?"""
    swept = [axis for axis in results.axes if axis.startswith("resources.")]
    if not swept or results.rounds.empty:
        return None
    rest = [a for a in results.axes if a not in swept and a != SEED_AXIS and a != SEED] + [SEED]
    kept = [c for c in results.rounds.columns if not WALL_CLOCK.search(c)]
    numbers = results.rounds[kept]
    done = results.cells[results.cells["status"] == "done"]
    compared, differing = 0, []
    for key, group in done.groupby(rest, dropna=False):
        frames = [_rounds_of(numbers, cell) for cell in group["cell_id"]]
        if len(frames) < 2:
            continue
        compared += 1
        if not all(frame.equals(frames[0]) for frame in frames[1:]):
            differing.append(", ".join(f"{k}={v}" for k, v in zip(rest, key, strict=True)))
    names = ", ".join(swept)
    if compared == 0:
        return f"Cells that differ only in {names}: none complete side by side to compare."
    if not differing:
        return (
            f"Cells that differ only in {names} are numerically identical: every round's "
            f"metrics but wall-clock times, in all {compared} groups of such cells."
        )
    return (
        f"Cells that differ only in {names} are NOT numerically identical in {len(differing)} "
        f"of {compared} groups (first: {differing[0]}): their results depend on the resources."
    )


def _rounds_of(numbers: pd.DataFrame, cell_id: str) -> pd.DataFrame:
    rows = numbers[numbers["cell_id"] == cell_id].drop(columns="cell_id")
    return rows.sort_values("round").reset_index(drop=True)
