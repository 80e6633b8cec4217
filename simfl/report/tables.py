"""The report's tables as text cells with a mark (best, tie), whatever format renders them.

Each table is a :class:`StyledTable`: header plus rows of :class:`Cell` whose ``mark`` says
"best in its setting" or "not significantly worse than the best" (a tie). Markdown renders
best as bold and a tie with ``≈``; LaTeX (``latex.py``) and HTML (``html.py``) render the same
marks their own way, so every output shows the same verdicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from simfl.report.comparison import ALL, Design, setting_label, short_key
from simfl.report.outcomes import DERIVED, higher_is_better
from simfl.report.statistics import RankTest, average_ranks

Mark = Literal["", "best", "tie"]
TIE_SYMBOL = "≈"


@dataclass(frozen=True)
class Cell:
    text: str
    mark: Mark = ""


@dataclass(frozen=True)
class StyledTable:
    """``index_columns`` leading columns are labels (left-aligned); the rest are figures."""

    title: str
    header: list[str]
    rows: list[list[Cell]]
    index_columns: int = 1
    notes: list[str] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """Plain text (marks dropped), for CSV and tests."""
        return pd.DataFrame([[c.text for c in row] for row in self.rows], columns=self.header)


def digits_for(outcome: str) -> int:
    """Three decimals for rates and accuracies, fewer for counts, seconds and megabytes."""
    name = outcome.split(":")[-1]
    if name == "bytes_total" or name.startswith("bytes_"):
        return 0
    if name == "rounds_to_target":
        return 1
    if name in ("mb_total", "s_per_round") or name.endswith("_s") or "seconds" in name:
        return 2
    return 3


def interval_text(mean: float, low: float, high: float, digits: int) -> str:
    """``0.816 [0.790, 0.842]``; just the mean when one seed gives no interval; ``–`` if none."""
    if math.isnan(mean):
        return "–"
    if math.isnan(low):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _mark(row: pd.Series) -> Mark:
    return "best" if row["best"] else ("tie" if row["tie"] else "")


def outcome_label(outcome: str, target: float) -> str:
    """Readable column names; ``rounds_to_target`` says which accuracy it targets."""
    if outcome == "rounds_to_target":
        return f"rounds to {target:.0%} acc."
    if outcome == "time_to_target_s":
        return f"seconds to {target:.0%} acc."
    if outcome in DERIVED:
        return outcome.replace("_", " ")
    prefix, _, column = outcome.rpartition(":")
    return f"{prefix} {column}".strip() if prefix else f"final {column}"


def _competitors(table: pd.DataFrame, design: Design) -> list:
    return list(dict.fromkeys(table[design.by])) if design.by else [ALL]


def _settings(table: pd.DataFrame, design: Design) -> list[str]:
    return list(dict.fromkeys(setting_label(design, row) for _, row in table.iterrows()))


def winner_means(table: pd.DataFrame, design: Design, outcome: str) -> pd.DataFrame:
    """Competitors × settings of one outcome's means, in the winner map's order."""
    rows = table[table["outcome"] == outcome].copy()
    rows["setting"] = [setting_label(design, row) for _, row in rows.iterrows()]
    rows["competitor"] = rows[design.by] if design.by else ALL
    means = rows.pivot_table(index="competitor", columns="setting", values="mean", sort=False)
    return means.reindex(index=_competitors(rows, design), columns=_settings(rows, design))


def winner_map(table: pd.DataFrame, design: Design, outcome: str, target: float) -> StyledTable:
    """Competitors × settings of one outcome: mean [CI], best bold, ties marked."""
    rows = table[table["outcome"] == outcome].copy()
    rows["setting"] = [setting_label(design, row) for _, row in rows.iterrows()]
    settings = _settings(rows, design)
    digits = digits_for(outcome)
    body = []
    for competitor in _competitors(rows, design):
        mine = rows[rows[design.by] == competitor] if design.by else rows
        by_setting = {r["setting"]: r for _, r in mine.iterrows()}
        cells = [Cell(str(competitor))]
        for setting in settings:
            r = by_setting.get(setting)
            cells.append(
                Cell("–")
                if r is None
                else Cell(interval_text(r["mean"], r["ci_low"], r["ci_high"], digits), _mark(r))
            )
        body.append(cells)
    axis = short_key(design.x) if design.x and len(design.settings) == 1 else None
    header = [
        short_key(design.by) if design.by else "",
        *(f"{axis} = {s}" if axis else s for s in settings),
    ]
    title = f"Winner map: {outcome_label(outcome, target)}"
    return StyledTable(title, header, body)


def rank_test(table: pd.DataFrame, design: Design, outcome: str, alpha: float) -> RankTest:
    """Demšar's average ranks of the competitors over the sweep's settings for one outcome."""
    rows = table[table["outcome"] == outcome].copy()
    rows["setting"] = [setting_label(design, row) for _, row in rows.iterrows()]
    means = rows.pivot_table(
        index="setting", columns=design.by or "outcome", values="mean", sort=False
    )
    return average_ranks(means, higher_is_better(outcome), alpha)


def rank_table(test: RankTest, design: Design, outcome: str, target: float) -> StyledTable:
    """Competitors by average rank (1 = best), with wins and the rank in each setting."""
    settings = list(test.ranks.index)
    body = []
    best_rank = test.average_ranks.min() if len(test.average_ranks) else math.nan
    for competitor, average in test.average_ranks.items():
        column = test.ranks[competitor]
        mark: Mark = "best" if average == best_rank else ""
        body.append(
            [
                Cell(str(competitor)),
                Cell(f"{average:.2f}", mark),
                Cell(str(int((column == 1).sum()))),
                *(Cell(f"{column[s]:g}") for s in settings),
            ]
        )
    header = [
        short_key(design.by) if design.by else "",
        "mean rank",
        "wins",
        *(f"rank @ {s}" for s in settings),
    ]
    notes = [
        f"Ranks of the mean {outcome_label(outcome, target)} within each of "
        f"{len(settings)} setting(s) (1 = best; ties share the average rank)."
    ]
    if not math.isnan(test.friedman_p):
        notes.append(f"Friedman test over settings: p = {test.friedman_p:.3g}.")
    if not math.isnan(test.critical_difference):
        notes.append(
            f"Nemenyi critical difference (α = 0.05): {test.critical_difference:.2f} ranks; "
            "competitors closer than that in mean rank are not told apart."
        )
    return StyledTable(f"Average rank: {outcome_label(outcome, target)}", header, body, notes=notes)


def comparison_table(
    table: pd.DataFrame, design: Design, outcomes: list[str], target: float
) -> StyledTable:
    """Every group (setting × competitor) by every outcome: mean [CI], seeds done/planned."""
    first = table[table["outcome"] == outcomes[0]]
    body = []
    for _, group in first.iterrows():
        labels = [Cell(str(group[key])) for key in design.groups] or [Cell(ALL)]
        mine = table
        if design.groups:
            mine = table[(table[design.groups] == group[design.groups]).all(axis=1)]
        mine = mine.set_index("outcome")
        figures = []
        for outcome in outcomes:
            r = mine.loc[outcome]
            text = interval_text(r["mean"], r["ci_low"], r["ci_high"], digits_for(outcome))
            if outcome in ("rounds_to_target", "time_to_target_s") and r["seeds"] < group["seeds"]:
                text += f" ({int(r['seeds'])}/{int(group['seeds'])} reached)"
            figures.append(Cell(text, _mark(r)))
        seeds = Cell(f"{int(group['seeds'])}/{int(group['seeds_planned'])}")
        body.append([*labels, *figures, seeds])
    header = [
        *([short_key(g) for g in design.groups] or ["group"]),
        *(outcome_label(o, target) for o in outcomes),
        "seeds",
    ]
    return StyledTable(
        "Comparison (mean [95% CI] over seeds)",
        header,
        body,
        index_columns=max(1, len(design.groups)),
    )


def markdown(table: StyledTable) -> str:
    """GitHub Markdown: best in bold, ties followed by ≈, notes below."""

    def text(cell: Cell) -> str:
        if cell.mark == "best":
            return f"**{cell.text}**"
        return f"{cell.text} {TIE_SYMBOL}" if cell.mark == "tie" else cell.text

    lines = ["| " + " | ".join(table.header) + " |"]
    lines.append(
        "|"
        + "".join(
            " --- |" if i < table.index_columns else " ---: |" for i in range(len(table.header))
        )
    )
    lines += ["| " + " | ".join(text(c) for c in row) + " |" for row in table.rows]
    return "\n".join([*lines, *([""] + table.notes if table.notes else [])])
