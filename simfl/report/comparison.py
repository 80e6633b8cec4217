"""Who is compared with whom: competitors (``--by``) within settings (every other axis).

A *setting* is one combination of the swept keys other than the competitor axis and the seed
(``partition.alpha=0.1``); within it the competitors (strategies) are compared paired over
seeds. The result is one long table, one row per setting × competitor × outcome, that the
winner map, the rank table and every output format read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from simfl.errors import ScenarioError
from simfl.report.load import SEED, Results
from simfl.report.metric_range import metric_range
from simfl.report.outcomes import higher_is_better
from simfl.report.statistics import CiMethod, compare_to_best, seeds_needed

DEFAULT_COMPETITOR = "strategy.name"
ALL = "all"


@dataclass(frozen=True)
class Design:
    """``by``: the competitor axis (None: one competitor); ``settings``: the other axes, x first."""

    by: str | None
    x: str | None
    settings: list[str]

    @property
    def groups(self) -> list[str]:
        return [*self.settings, *([self.by] if self.by else [])]


def _check_axis(flag: str, key: str | None, axes: list[str]) -> None:
    if key is not None and key not in axes:
        allowed = ", ".join(axes) if axes else "none: these results sweep no key"
        raise ScenarioError(f"{flag} {key!r}: not a swept key; allowed: {allowed}")


def choose_design(axes: list[str], x: str | None, by: str | None) -> Design:
    """Competitors: ``--by``, else ``strategy.name`` when swept, else the first axis not ``--x``."""
    _check_axis("--x", x, axes)
    _check_axis("--by", by, axes)
    if by is not None and by == x:
        raise ScenarioError(f"--by {by!r}: must differ from --x (the competitors are the rows)")
    if by is None:
        candidates = [a for a in axes if a != x]
        by = (
            DEFAULT_COMPETITOR if DEFAULT_COMPETITOR in candidates else next(iter(candidates), None)
        )
    settings = [a for a in axes if a != by]
    if x is None:
        x = settings[0] if settings else None
    settings = ([x] if x else []) + [a for a in settings if a != x]
    return Design(by, x, settings)


def _key(keys: list[str], value: Any) -> dict[str, Any]:
    value = value if isinstance(value, tuple) else (value,)
    return dict(zip(keys, value, strict=True))


def _position(order: list[Any], value: Any) -> tuple[int, str]:
    """Competitors in the sweep's own order (as listed in ``[sweep]``), unknown ones last."""
    return (order.index(value) if value in order else len(order), str(value))


def short_key(key: str) -> str:
    """``partition.alpha`` -> ``alpha``; ``strategy.name`` -> ``strategy`` (not a bare ``name``)."""
    parts = key.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def compare(
    results: Results,
    per_cell: pd.DataFrame,
    design: Design,
    outcomes: list[str],
    alpha: float = 0.05,
    confidence: float = 0.95,
    method: CiMethod = "t",
    target_halfwidth: float = 0.02,
) -> pd.DataFrame:
    """One row per setting × competitor × outcome: seeds, mean, std, CI (inside the outcome's
    range), paired p vs the best, and the seeds the paired difference with the best would need
    for a CI of ± ``target_halfwidth``."""
    data = results.cells.merge(per_cell, on="cell_id", how="inner")
    planned = results.cells.groupby(design.groups, dropna=False).size() if design.groups else None
    rows = []
    settings = data.groupby(design.settings, sort=True) if design.settings else [((), data)]
    order = results.axes.get(design.by, []) if design.by else []
    for setting_value, setting in settings:
        where = _key(design.settings, setting_value) if design.settings else {}
        competitors = setting.groupby(design.by, sort=False) if design.by else [(ALL, setting)]
        per_competitor = dict(sorted(competitors, key=lambda item: _position(order, item[0])))
        for outcome in outcomes:
            per_seed = {
                name: frame.set_index(SEED)[outcome] for name, frame in per_competitor.items()
            }
            verdicts = compare_to_best(
                per_seed, higher_is_better(outcome), alpha, confidence, method,
                metric_range(outcome),
            )  # fmt: skip
            for verdict in verdicts:
                group = {**where, **({design.by: verdict.competitor} if design.by else {})}
                key = tuple(group[g] for g in design.groups)
                rows.append(
                    {
                        **group,
                        "outcome": outcome,
                        "seeds": verdict.summary.n,
                        "seeds_planned": _planned(planned, key, len(results.cells)),
                        "mean": verdict.summary.mean,
                        "std": verdict.summary.std,
                        "ci_low": verdict.summary.ci_low,
                        "ci_high": verdict.summary.ci_high,
                        "interval": verdict.summary.interval,
                        "p_vs_best": verdict.p_value,
                        "p_holm": verdict.p_holm,
                        "best": verdict.is_best,
                        "tie": verdict.tie,
                        "paired_std": verdict.paired_spread,
                        "seeds_needed": seeds_needed(
                            verdict.paired_spread, target_halfwidth, confidence
                        ),
                    }
                )
    return pd.DataFrame(rows)


def _planned(planned: pd.Series | None, key: tuple, total: int) -> int:
    """How many cells the grid plans for this group (seeds planned), done or not."""
    if planned is None:
        return total
    return int(planned.loc[key if len(key) > 1 else key[0]])


def setting_label(design: Design, row: pd.Series | dict) -> str:
    """``0.1`` for one setting axis, ``alpha=0.1, num_clients=20`` for several; ``all`` for none."""
    if not design.settings:
        return ALL
    if len(design.settings) == 1:
        return str(row[design.settings[0]])
    return ", ".join(f"{short_key(key)}={row[key]}" for key in design.settings)


def wide(table: pd.DataFrame, design: Design) -> pd.DataFrame:
    """One row per group (setting × competitor): seeds, then ``<outcome>_<statistic>`` columns.

    The same numbers as the long table, shaped for a spreadsheet: ``central_accuracy_mean``,
    ``central_accuracy_ci_low``, ``central_accuracy_p_holm``, ``central_accuracy_best``...
    """
    keys = design.groups or ["outcome"]
    statistics = ["mean", "std", "ci_low", "ci_high", "p_vs_best", "p_holm", "best", "tie"]
    first = table["outcome"].iloc[0]
    out = table[table["outcome"] == first][[*design.groups, "seeds", "seeds_planned"]]
    out = out.reset_index(drop=True)
    for outcome, rows in table.groupby("outcome", sort=False):
        rows = rows.reset_index(drop=True)
        for statistic in statistics:
            out[f"{outcome}_{statistic}"] = rows[statistic]
    return out if design.groups else out.drop(columns=[k for k in keys if k in out])
