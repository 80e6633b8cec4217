"""``simfl report``: statistics over seeds, then every output format, in one directory.

Order: load the cells (any sweeps and runs), reduce each cell to its outcomes, compare the
competitors within each setting (CI, paired tests, Holm), then write the same verdicts as
Markdown, CSV/Parquet, LaTeX (booktabs), one self-contained HTML page and PNG/SVG figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from simfl.atomic import write_atomically, write_table, write_text
from simfl.report import outcomes as outcome_rules
from simfl.report.comparison import Design, choose_design, compare, wide
from simfl.report.html import page
from simfl.report.latex import booktabs
from simfl.report.load import SEED, Results, load_results
from simfl.report.plots import (
    Figure,
    client_boxes,
    metric_curves,
    outcome_vs_x,
    winner_heatmap,
)
from simfl.report.resources_identity import resources_note
from simfl.report.statistics import MIN_SEEDS_FOR_SIGNIFICANCE, CiMethod
from simfl.report.tables import (
    StyledTable,
    comparison_table,
    markdown,
    rank_table,
    rank_test,
    winner_map,
    winner_means,
)

CLIENT_METRIC = "eval_accuracy"
PATH_COLUMNS = ["directory", "group", "label"]  # in cells.csv, too long for the page


@dataclass(frozen=True)
class ReportOptions:
    """What to compare and how: the axes, the outcome, the target and the statistics."""

    x: str | None = None
    y: str = outcome_rules.ACCURACY
    by: str | None = None
    target: float = 0.5
    alpha: float = 0.05
    confidence: float = 0.95
    ci: CiMethod = "t"
    target_halfwidth: float = 0.02


@dataclass(frozen=True)
class Report:
    directory: Path
    title: str
    markdown: str
    notes: list[str]
    design: Design | None
    comparison: pd.DataFrame
    options: ReportOptions
    tables: list[StyledTable] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    results: Results | None = None


def _notes(results: Results, comparison: pd.DataFrame, options: ReportOptions) -> list[str]:
    missing = results.missing
    notes = [
        f"All {len(results.cells)} cells are complete."
        if missing.empty
        else f"{len(missing)} of {len(results.cells)} cells are missing: "
        + ", ".join(f"{r.label} ({r.status})" for r in missing.itertuples())
        + "."
    ]
    identity = resources_note(results)
    if identity is not None:
        notes.append(identity)
    if comparison.empty:
        return notes
    rows = comparison[comparison["outcome"] == options.y]
    fewest = int(rows["seeds"].min())
    notes.append(
        f"{options.confidence:.0%} confidence intervals over seeds, inside each metric's range: "
        f"{_interval_methods(comparison)}; std is the "
        "sample std (ddof = 1). Competitors are compared paired over the seeds they share "
        f"(same seed = same client split), two-sided paired t-test against the setting's best, "
        f"Holm-corrected within the setting, α = {options.alpha:g}."
    )
    notes.append(_seeds_needed_line(rows, options))
    if fewest < MIN_SEEDS_FOR_SIGNIFICANCE:
        notes.append(
            f"Only {fewest} seed(s) in some group: no significance can be claimed (at least "
            f"{MIN_SEEDS_FOR_SIGNIFICANCE} are needed); the best is marked by its mean only and "
            "no ties are marked."
        )
    return notes


def _interval_methods(comparison: pd.DataFrame) -> str:
    """Which interval each outcome got (``interval`` column), e.g. ``t on the logit scale
    (central_accuracy, ...)``."""
    used = comparison[comparison["interval"] != ""].groupby("interval", sort=False)["outcome"]
    parts = [f"{how} ({', '.join(dict.fromkeys(outcomes))})" for how, outcomes in used]
    return "; ".join(parts) or "none (one seed per group)"


def _seeds_needed_line(rows: pd.DataFrame, options: ReportOptions) -> str:
    """How many seeds the paired comparisons of ``--y`` would need for ± the target half-width."""
    needed = rows["seeds_needed"].dropna()
    target = f"±{options.target_halfwidth:g} ({options.confidence:.0%})"
    if needed.empty:
        return (
            f"Seeds needed for {target} on a paired difference in {options.y}: unknown (a "
            "comparison needs at least 2 shared seeds to show its spread)."
        )
    return (
        f"Seeds needed for {target} on the paired difference with the best, from the observed "
        f"paired std of {options.y}: median {needed.median():g}, at most {needed.max():g} "
        f"(seeds_needed per comparison in statistics.csv); the groups have {rows['seeds'].min()}"
        f"-{rows['seeds'].max()}."
    )


def _tables(
    comparison: pd.DataFrame, design: Design, options: ReportOptions, outcomes: list[str]
) -> dict[str, StyledTable]:
    """Winner map of ``--y``, its average ranks (when there are competitors), every outcome."""
    tables = {"winner_map": winner_map(comparison, design, options.y, options.target)}
    if design.by:
        test = rank_test(comparison, design, options.y, options.alpha)
        tables["ranks"] = rank_table(test, design, options.y, options.target)
    tables["comparison_table"] = comparison_table(comparison, design, outcomes, options.target)
    return tables


def _figures(results: Results, comparison: pd.DataFrame, design: Design, options, styled_map):
    y_column = options.y if options.y in results.rounds.columns else outcome_rules.ACCURACY
    figures: list[Figure | None] = [
        winner_heatmap(winner_means(comparison, design, options.y), styled_map, options.y),
        metric_curves(results.rounds, results.cells, design, y_column),
        outcome_vs_x(comparison, design, options.y),
        client_boxes(
            results.clients, results.cells, design, CLIENT_METRIC, results.axes.get(design.by, [])
        ),
    ]
    return [figure for figure in figures if figure is not None]


def _write(
    out_dir: Path,
    report_md: str,
    tables: dict[str, StyledTable],
    figures: list[Figure],
    comparison: pd.DataFrame,
    raw: pd.DataFrame,
    html_text: str,
    design: Design,
) -> None:
    write_text(out_dir / "report.md", report_md)
    write_text(out_dir / "report.html", html_text)
    write_table(out_dir / "statistics", comparison)
    write_table(out_dir / "comparison", wide(comparison, design))
    write_table(out_dir / "cells", raw)
    for stem, table in tables.items():
        write_table(out_dir / stem, table.frame())
        write_text(out_dir / f"{stem}.tex", booktabs(table, f"tab:{stem.replace('_', '-')}"))
    for figure in figures:
        for suffix, data in (("png", figure.png), ("svg", figure.svg)):
            write_atomically(
                out_dir / f"{figure.name}.{suffix}", lambda t, d=data: t.write_bytes(d)
            )


def build_report(directories: list[Path], out_dir: Path | None, options: ReportOptions) -> Report:
    """Load, compare and write every output into ``out_dir`` (default: first dir/report)."""
    results = load_results(directories)
    out_dir = out_dir or Path(directories[0]) / "report"
    title = f"simfl report: {', '.join(results.sources)}"
    design = choose_design(list(results.axes), options.x, options.by)
    if results.rounds.empty:
        notes = _notes(results, pd.DataFrame(), options)
        text = f"# {title}\n\n" + "\n\n".join(notes) + "\n\n(no completed cells)\n"
        write_text(out_dir / "report.md", text)
        return Report(
            out_dir,
            title,
            text,
            notes,
            design,
            pd.DataFrame(),
            options,
            missing=list(results.missing["cell_id"]),
            results=results,
        )
    outcome_rules.check(options.y, results.rounds)
    wanted = outcome_rules.default_outcomes(results.rounds, options.y)
    per_cell = outcome_rules.per_cell(results.rounds, wanted, options.target)
    comparison = compare(
        results, per_cell, design, wanted, options.alpha, options.confidence, options.ci,
        options.target_halfwidth,
    )  # fmt: skip
    tables = _tables(comparison, design, options, wanted)
    notes = _notes(results, comparison, options)
    figures = _figures(results, comparison, design, options, tables["winner_map"])
    body = "\n\n".join(f"## {t.title}\n\n{markdown(t)}" for t in tables.values())
    report_md = f"# {title}\n\n" + "\n\n".join(notes) + "\n\n" + body + "\n"
    raw = results.cells.merge(per_cell, on="cell_id", how="left").sort_values(
        [*design.groups, SEED]
    )
    html_text = page(title, notes, list(tables.values()), figures, raw.drop(columns=PATH_COLUMNS))
    _write(out_dir, report_md, tables, figures, comparison, raw, html_text, design)
    return Report(
        out_dir,
        title,
        body,
        notes,
        design,
        comparison,
        options,
        list(tables.values()),
        [f.name for f in figures],
        list(results.missing["cell_id"]),
        results,
    )
