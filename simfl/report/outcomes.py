"""One number per cell from its round records: what the report compares (``--y``).

Any column of ``metrics.parquet`` is an outcome without registering it: ``central_accuracy`` is
its final value (the last round that has one), and ``best:``, ``min:``, ``mean:`` and ``sum:``
prefixes aggregate over rounds (``sum:sim_time_s``, ``best:central_accuracy``). So columns that
later work adds to the round record (``epsilon``, ``sim_time_s``) work as soon as they exist. A
few derived outcomes need a rule of their own: rounds and wall time to the target accuracy,
bytes communicated and seconds per round.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from simfl.errors import ScenarioError

ACCURACY = "central_accuracy"
AGGREGATES = {"best": "max", "max": "max", "min": "min", "mean": "mean", "sum": "sum"}
NOT_OUTCOMES = ("cell_id", "round")
DERIVED = {
    "rounds_to_target": "first round whose central accuracy reaches --target",
    "time_to_target_s": "wall seconds of the rounds until central accuracy reaches --target",
    "bytes_total": "bytes sent down and up over the run",
    "mb_total": "MB sent down and up over the run",
    "s_per_round": "mean wall seconds per training round",
    "sim_hours_to_target": "simulated hours ([systems]) until central accuracy reaches --target",
}
DEFAULT_TABLE = (
    "central_accuracy",
    "best:central_accuracy",
    "rounds_to_target",
    "fed_accuracy_worst10",
    "s_per_round",
    "mb_total",
)
OPTIONAL_TABLE = ("epsilon", "sim_time_s", "central_wer")  # shown when a run records them
LOWER_IS_BETTER = re.compile(
    r"loss|wer|cer|seconds|_s$|^s_per_|bytes|^mb_|time|hours|rounds_to|epsilon|failed"
)


def higher_is_better(outcome: str) -> bool:
    """Accuracies up, and losses, error rates, time, bytes, privacy loss ε down (by name)."""
    return LOWER_IS_BETTER.search(outcome.split(":")[-1]) is None


def available(rounds: pd.DataFrame) -> list[str]:
    """Every outcome these round records allow (plain column names and the derived ones)."""
    numeric = [
        c
        for c in rounds.columns
        if c not in NOT_OUTCOMES and pd.api.types.is_numeric_dtype(rounds[c])
    ]
    return [*numeric, *DERIVED]


def check(outcome: str, rounds: pd.DataFrame, flag: str = "--y") -> None:
    """One clear line if ``outcome`` is not something these records can give."""
    column = outcome.split(":", 1)[1] if ":" in outcome else outcome
    prefix = outcome.split(":", 1)[0] if ":" in outcome else None
    allowed = available(rounds)
    if prefix is not None and prefix not in AGGREGATES:
        raise ScenarioError(
            f"{flag} {outcome!r}: unknown aggregate {prefix!r}; allowed: {', '.join(AGGREGATES)}"
        )
    if column not in allowed or (prefix and column in DERIVED):
        raise ScenarioError(
            f"{flag} {outcome!r}: not a metric of these runs; allowed: {', '.join(allowed)} "
            f"(optionally prefixed {', '.join(p + ':' for p in AGGREGATES)})"
        )


def _last_value(series: pd.Series) -> float:
    values = series.dropna()
    return float(values.iloc[-1]) if len(values) else math.nan


def _derived(frame: pd.DataFrame, name: str, target: float) -> float:
    trained = frame[frame["round"] > 0]
    if name in ("bytes_total", "mb_total"):
        total = float(frame["bytes_down"].sum() + frame["bytes_up"].sum())
        return total if name == "bytes_total" else total / 1e6
    if name == "s_per_round":
        return float(trained["round_seconds"].mean())
    reached = frame.index[frame[ACCURACY] >= target]
    if not len(reached):
        return math.nan
    first = reached[0]
    if name == "rounds_to_target":
        return float(frame.loc[first, "round"])
    if name == "sim_hours_to_target":
        return float(frame.loc[first, "sim_time_h"]) if "sim_time_h" in frame else math.nan
    return float(frame.loc[:first, "round_seconds"].sum())


def value(frame: pd.DataFrame, outcome: str, target: float) -> float:
    """``outcome`` for one cell's rounds (sorted by round)."""
    if outcome in DERIVED:
        return _derived(frame, outcome, target)
    if ":" in outcome:
        prefix, column = outcome.split(":", 1)
        return float(frame[column].agg(AGGREGATES[prefix]))
    return _last_value(frame[outcome])


def per_cell(rounds: pd.DataFrame, outcomes: list[str], target: float) -> pd.DataFrame:
    """One row per done cell (``cell_id``) with one column per outcome."""
    rows = []
    for cell_id, frame in rounds.groupby("cell_id", sort=False):
        frame = frame.sort_values("round").reset_index(drop=True)
        rows.append({"cell_id": cell_id, **{o: value(frame, o, target) for o in outcomes}})
    return pd.DataFrame(rows, columns=["cell_id", *outcomes])


def default_outcomes(rounds: pd.DataFrame, y: str) -> list[str]:
    """``--y`` first, then the usual comparison columns these records can give (no duplicates)."""
    allowed = set(available(rounds))
    wanted = [y, *DEFAULT_TABLE, *OPTIONAL_TABLE]
    usable = [
        o
        for o in wanted
        if o.split(":")[-1] in allowed and not np.all(pd.isna(rounds.get(o.split(":")[-1], 0)))
    ]
    return list(dict.fromkeys(usable))
