"""The privacy-utility report of a sweep: final accuracy against epsilon, MIA AUC against epsilon.

``simfl report`` already lists every final metric of a privacy sweep (``epsilon``,
``mia_auc``...) as columns; this adds the two plots that answer "what does privacy cost":
for each non-seed configuration, the mean ± std over seeds of final central accuracy and of
the membership-inference AUC, against the epsilon spent (log scale), one line per strategy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from simfl.atomic import write_atomically, write_text
from simfl.errors import ScenarioError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRICS = ("epsilon", "central_accuracy", "mia_auc", "mia_tpr_at_1pct_fpr")


def load_cells(sweep_dir: Path) -> pd.DataFrame:
    """One row per done cell: its axes (from the sweep index) and its final privacy metrics."""
    index_path = sweep_dir / "index.parquet"
    if not index_path.exists():
        raise ScenarioError(f"{sweep_dir}: not a sweep directory (no index.parquet)")
    index = pd.read_parquet(index_path)
    rows = []
    for cell in index.to_dict("records"):
        summary_path = sweep_dir / "cells" / cell["cell_id"] / "summary.json"
        if cell["status"] != "done" or not summary_path.exists():
            continue
        final = json.loads(summary_path.read_text())["final"]
        rows.append({**cell, **{name: final.get(name) for name in METRICS}})
    return pd.DataFrame(rows)


def privacy_table(cells: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Mean and std over seeds of every privacy metric, per configuration."""
    grouped = cells.groupby(axes, dropna=False)[list(METRICS)]
    table = grouped.agg(["mean", "std"])
    table.columns = [f"{name}_{stat}" for name, stat in table.columns]
    table["seeds"] = grouped.size()
    return table.reset_index()


def _axes(cells: pd.DataFrame) -> list[str]:
    fixed = {"cell_id", "label", "seeds", "status", "error", *METRICS}
    return [c for c in cells.columns if "." in c and c not in fixed]


def draw_privacy_figure(table: pd.DataFrame, line_axis: str | None) -> Figure:
    """The two panels as a matplotlib ``Figure`` (Agg canvas, no pyplot state), one legend
    below both: inside either panel it would cover a curve or a noise-0 line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    panels = fig.subplots(1, 2)
    groups = table.groupby(line_axis) if line_axis else [("all", table)]
    for name, group in groups:
        group = group.sort_values("epsilon_mean")
        # Noise 0 spends epsilon = inf: no point on a log axis, drawn as a reference line.
        finite = group[np.isfinite(group["epsilon_mean"])]
        for panel, metric in zip(panels, ("central_accuracy", "mia_auc"), strict=True):
            line = panel.errorbar(
                finite["epsilon_mean"],
                finite[f"{metric}_mean"],
                yerr=finite[f"{metric}_std"].fillna(0),
                marker="o",
                capsize=3,
                label=str(name),
            )
            for value in group.loc[~np.isfinite(group["epsilon_mean"]), f"{metric}_mean"]:
                panel.axhline(
                    value,
                    color=line.lines[0].get_color(),
                    linestyle=":",
                    label=f"{name}: noise 0 (epsilon = inf)",
                )
    panels[0].set(xscale="log", xlabel="epsilon", ylabel="final central accuracy")
    panels[1].set(xscale="log", xlabel="epsilon", ylabel="membership-inference AUC")
    chance = panels[1].axhline(0.5, color="grey", linestyle="--", linewidth=1)
    epsilons = table["epsilon_mean"].to_numpy(dtype=float)
    for panel in panels:
        _epsilon_ticks(panel, epsilons[np.isfinite(epsilons)])
        panel.grid(alpha=0.3)
        low, high = panel.get_ylim()  # accuracy and AUC are proportions: stay inside [0, 1]
        panel.set_ylim(max(low, 0.0), min(high, 1.0))
    # The panels draw the same lines in the same colours: the left one's handles name both.
    # Strategies first, then their noise-0 references (matplotlib would list those first).
    pairs = zip(*panels[0].get_legend_handles_labels(), strict=True)
    ordered = sorted(pairs, key=lambda pair: pair[1].endswith("(epsilon = inf)"))
    handles = [h for h, _ in ordered] + [chance]
    labels = [label for _, label in ordered] + ["chance (AUC 0.5)"]
    fig.legend(
        handles,
        labels,
        title=line_axis,
        loc="outside lower center",
        ncol=min(3, len(handles)),
        fontsize=9,
        title_fontsize=9,
        frameon=False,
    )
    fig.suptitle("privacy-utility trade-off (mean ± std over seeds)")
    return fig


def _epsilon_ticks(panel, epsilons: np.ndarray) -> None:
    """Ticks at the epsilons spent, written plainly: over less than a decade matplotlib's log
    axis labels minor ticks (``3x10^1``) and may mark none of the points. A value closer than
    8% of the axis (in log) to the last one ticked is left unlabelled, so labels never meet."""
    from matplotlib.ticker import NullLocator

    values = np.unique(epsilons[epsilons > 0])
    if not 0 < len(values) <= 12:
        return
    span = max(np.log10(values[-1] / values[0]), 1.0)
    ticks = [values[0]]
    for value in values[1:]:
        if np.log10(value / ticks[-1]) >= 0.08 * span:
            ticks.append(value)
    panel.xaxis.set_minor_locator(NullLocator())
    panel.set_xticks(ticks, [f"{v:.3g}" if v < 1000 else f"{v:.0f}" for v in ticks])


def privacy_figure(table: pd.DataFrame, line_axis: str | None) -> bytes:
    """:func:`draw_privacy_figure` as PNG bytes."""
    import io

    buffer = io.BytesIO()
    draw_privacy_figure(table, line_axis).savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()


def _mean_std(row: dict, name: str, digits: int) -> str:
    mean, std = row[f"{name}_mean"], row[f"{name}_std"]
    if np.isinf(mean):
        return "∞ (no noise)"
    return f"{mean:.{digits}f} ± {0 if np.isnan(std) else std:.{digits}f}"


def markdown(table: pd.DataFrame, axes: list[str]) -> str:
    lines = [
        "| " + " | ".join([*axes, "epsilon", "final accuracy", "MIA AUC", "TPR@1%FPR"]) + " |",
        "|" + " --- |" * (len(axes) + 4),
    ]
    for row in table.to_dict("records"):
        pm = lambda name, digits=3, row=row: _mean_std(row, name, digits)  # noqa: E731
        cells = [str(row[a]) for a in axes]
        cells += [
            pm("epsilon", 2),
            pm("central_accuracy"),
            pm("mia_auc"),
            pm("mia_tpr_at_1pct_fpr"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_privacy_report(sweep_dir: Path) -> Path:
    """privacy_utility.{csv,md,png} in the sweep directory; returns the figure's path."""
    cells = load_cells(sweep_dir)
    if cells.empty or cells["epsilon"].isna().all():
        raise ScenarioError(f"{sweep_dir}: no finished cell reports epsilon ([privacy] mode)")
    axes = _axes(cells)
    table = privacy_table(cells, axes)
    line_axis = next((a for a in axes if a != "privacy.noise_multiplier"), None)
    write_text(sweep_dir / "privacy_utility.csv", table.to_csv(index=False))
    write_text(sweep_dir / "privacy_utility.md", markdown(table, axes))
    figure, png = sweep_dir / "privacy_utility.png", privacy_figure(table, line_axis)
    write_atomically(figure, lambda path: path.write_bytes(png))
    return figure
