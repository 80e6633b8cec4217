"""The comparison table: every grid point (all axes but the seed), mean ± std over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simfl.report.load import SweepResults

METRICS = {
    "final_acc": "final central accuracy",
    "best_acc": "best central accuracy",
    "rounds_to_target": "rounds to target accuracy",
    "worst10_acc": "final worst-10% client accuracy",
    "s_per_round": "seconds per round",
    "mb_total": "MB communicated",
}


def per_cell(results: SweepResults, target: float) -> pd.DataFrame:
    """One row per done cell with the figures the report compares."""
    if results.rounds.empty:
        return pd.DataFrame()
    rows = []
    for cell_id, frame in results.rounds.groupby("cell_id", sort=False):
        frame = frame.sort_values("round")
        last = frame.iloc[-1]
        reached = frame[frame["central_accuracy"] >= target]["round"]
        rows.append(
            {
                "cell_id": cell_id,
                "final_acc": last["central_accuracy"],
                "best_acc": frame["central_accuracy"].max(),
                "rounds_to_target": float(reached.iloc[0]) if len(reached) else np.nan,
                "worst10_acc": last.get("fed_accuracy_worst10", np.nan),
                "s_per_round": frame.loc[frame["round"] > 0, "round_seconds"].mean(),
                "mb_total": (frame["bytes_down"].sum() + frame["bytes_up"].sum()) / 1e6,
            }
        )
    figures = pd.DataFrame(rows)
    return results.cells.merge(figures, on="cell_id", how="inner")


def comparison(results: SweepResults, target: float) -> pd.DataFrame:
    """Mean and std over seeds per grid point, with how many seeds are in and the planned count."""
    cells = per_cell(results, target)
    keys = results.group_axes
    planned = results.cells.groupby(keys, dropna=False).size() if keys else len(results.cells)
    if cells.empty:
        return pd.DataFrame()
    grouped = cells.groupby(keys, dropna=False) if keys else [((), cells)]
    rows = []
    for key, frame in grouped:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key, strict=True))
        row["seeds"] = len(frame)
        row["seeds_planned"] = int(planned.loc[key] if keys else planned)
        for metric in METRICS:
            row[f"{metric}_mean"] = frame[metric].mean()
            row[f"{metric}_std"] = frame[metric].std(ddof=0)
        row["reached_target"] = int(frame["rounds_to_target"].notna().sum())
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean: float, std: float, digits: int) -> str:
    if mean != mean:
        return "never"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def formatted(table: pd.DataFrame, keys: list[str], target: float) -> pd.DataFrame:
    """The comparison as strings, mean ± std over seeds, with readable column names."""
    digits = {"s_per_round": 2, "mb_total": 1, "rounds_to_target": 1}
    names = {**METRICS, "rounds_to_target": f"rounds to {target:.0%} accuracy"}
    out = pd.DataFrame({key: table[key].astype(str) for key in keys})
    for metric in METRICS:
        out[names[metric]] = [
            _pm(mean, std, digits.get(metric, 3))
            for mean, std in zip(table[f"{metric}_mean"], table[f"{metric}_std"], strict=True)
        ]
    rounds = names["rounds_to_target"]  # a mean over the seeds that got there: say how many
    out[rounds] = [
        text if reached in (0, seeds) else f"{text} ({int(reached)}/{int(seeds)} seeds reached)"
        for text, reached, seeds in zip(
            out[rounds], table["reached_target"], table["seeds"], strict=True
        )
    ]
    out["seeds"] = [
        f"{int(done)}/{int(planned)}"
        for done, planned in zip(table["seeds"], table["seeds_planned"], strict=True)
    ]
    return out


def markdown(frame: pd.DataFrame) -> str:
    """A paper-ready Markdown table from :func:`formatted`."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
