"""The report's figures (matplotlib, Agg), each returned as PNG and SVG bytes.

* a metric per round, mean over seeds with a 95% interval band (inside the metric's range, as
  in the tables), one line per group;
* the winner map: competitors × settings heat map, colour scaled per setting (column) so the
  winner stands out even where settings differ in scale, winner bold, ties marked ``≈``;
* the outcome against a numeric ``--x`` with CI error bars, one line per competitor;
* per-client accuracy at the final round (box plots, clients of every seed pooled): fairness.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from simfl.report.comparison import ALL, Design, short_key  # noqa: E402
from simfl.report.metric_range import MetricRange, metric_range  # noqa: E402
from simfl.report.outcomes import higher_is_better  # noqa: E402
from simfl.report.statistics import summarize  # noqa: E402
from simfl.report.tables import TIE_SYMBOL, StyledTable  # noqa: E402


@dataclass(frozen=True)
class Figure:
    """One figure in both formats: PNG for the HTML page, SVG for papers and slides."""

    name: str
    png: bytes
    svg: bytes


def _render(name: str, figure: plt.Figure) -> Figure:
    figure.tight_layout()
    out = {}
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        figure.savefig(
            buffer, format=fmt, dpi=130, metadata={"Date": None} if fmt == "svg" else None
        )
        out[fmt] = buffer.getvalue()
    plt.close(figure)
    return Figure(name, out["png"], out["svg"])


def _label(keys: list[str], key: tuple) -> str:
    return ", ".join(f"{short_key(k)}={v}" for k, v in zip(keys, key, strict=True)) or ALL


def _band(values: pd.Series, bounds: MetricRange) -> tuple[float, float, float]:
    """Mean over seeds and its 95% interval, inside the metric's range (as in the tables)."""
    summary = summarize(values.to_numpy(), bounds=bounds)
    if summary.n < 2:
        return summary.mean, summary.mean, summary.mean
    return summary.mean, summary.ci_low, summary.ci_high


def metric_curves(rounds: pd.DataFrame, cells: pd.DataFrame, design: Design, column: str) -> Figure:
    """``column`` per round: mean over seeds and its 95% t-interval, one line per group."""
    keys = design.groups
    data = rounds.merge(cells[["cell_id", *keys]], on="cell_id")
    figure, axis = plt.subplots(figsize=(7.5, 4.2))
    groups = data.groupby(keys, sort=True) if keys else [((), data)]
    for key, frame in groups:
        key = key if isinstance(key, tuple) else (key,)
        band = frame.groupby("round")[column].apply(_band, bounds=metric_range(column))
        rounds_axis = band.index.to_numpy()
        mean, low, high = (np.array([b[i] for b in band]) for i in range(3))
        (line,) = axis.plot(rounds_axis, mean, label=_label(keys, key))
        axis.fill_between(rounds_axis, low, high, alpha=0.15, color=line.get_color())
    axis.set(xlabel="round", ylabel=column, title=f"{column} vs round (mean, 95% CI over seeds)")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    return _render(f"{column}_vs_round", figure)


def winner_heatmap(means: pd.DataFrame, styled: StyledTable, outcome: str) -> Figure:
    """The winner map as a heat map: the styled table's text over per-setting scaled colours.

    ``means`` is competitors × settings in the styled table's order; each column is scaled to
    its own min..max (flipped where lower is better) so every setting's winner is the darkest.
    """
    values = means.to_numpy(dtype=float)
    low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    scaled = (values - low) / np.where(high > low, high - low, 1.0)
    if not higher_is_better(outcome):
        scaled = 1.0 - scaled
    settings = styled.header[1:]
    width = min(12.0, 2.2 + 2.1 * len(settings))
    figure, axis = plt.subplots(figsize=(width, 1.0 + 0.6 * len(styled.rows)))
    axis.imshow(scaled, cmap="YlGn", vmin=-0.15, vmax=1.3, aspect="auto")
    for i, row in enumerate(styled.rows):
        for j, cell in enumerate(row[1:]):
            text = cell.text.replace(" [", "\n[") + (f" {TIE_SYMBOL}" if cell.mark == "tie" else "")
            weight = "bold" if cell.mark == "best" else "normal"
            color = "white" if scaled[i, j] > 0.75 else "black"  # readable on dark green
            axis.text(
                j, i, text, ha="center", va="center", fontsize=8, fontweight=weight, color=color
            )
    axis.set_xticks(range(len(settings)), settings, fontsize=8)
    axis.set_yticks(range(len(styled.rows)), [row[0].text for row in styled.rows], fontsize=8)
    axis.set_title(
        f"{styled.title}\n(bold: best; {TIE_SYMBOL}: not significantly worse than the best)",
        fontsize=9,
    )
    return _render(f"winner_map_{_safe(outcome)}", figure)


def outcome_vs_x(table: pd.DataFrame, design: Design, outcome: str) -> Figure | None:
    """The outcome against a numeric ``--x``, CI error bars, one line per competitor."""
    rows = table[table["outcome"] == outcome]
    if design.x is None or not pd.api.types.is_numeric_dtype(rows[design.x]):
        return None
    figure, axis = plt.subplots(figsize=(6.5, 4))
    others = [k for k in design.groups if k != design.x]
    groups = rows.groupby(others, sort=False) if others else [((), rows)]
    for key, frame in groups:
        key = key if isinstance(key, tuple) else (key,)
        frame = frame.sort_values(design.x)
        errors = np.vstack([frame["mean"] - frame["ci_low"], frame["ci_high"] - frame["mean"]])
        axis.errorbar(
            frame[design.x],
            frame["mean"],
            yerr=np.nan_to_num(errors),
            marker="o",
            capsize=3,
            label=_label(others, key),
        )
    values = pd.to_numeric(rows[design.x])
    if values.min() > 0 and values.max() / values.min() >= 10:
        axis.set_xscale("log")
    axis.set(xlabel=design.x, ylabel=outcome, title=f"{outcome} vs {design.x} (mean, 95% CI)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return _render(f"{_safe(outcome)}_vs_{design.x.split('.')[-1]}", figure)


def client_boxes(
    clients: pd.DataFrame, cells: pd.DataFrame, design: Design, column: str, order: list
) -> Figure | None:
    """Each client's ``column`` at its cell's last evaluated round, per competitor and setting."""
    if clients.empty or column not in clients:
        return None
    last = clients[clients["round"] == clients.groupby("cell_id")["round"].transform("max")]
    data = last.merge(cells[["cell_id", *design.groups]], on="cell_id")
    settings = data.groupby(design.settings, sort=True) if design.settings else [((), data)]
    settings = list(settings)
    figure, axes = plt.subplots(
        1,
        len(settings),
        figsize=(min(12.0, 1.5 + 3.2 * len(settings)), 3.8),
        sharey=True,
        squeeze=False,
    )
    for axis, (key, frame) in zip(axes[0], settings, strict=True):
        key = key if isinstance(key, tuple) else (key,)
        groups = list(frame.groupby(design.by, sort=False)) if design.by else [(ALL, frame)]
        groups.sort(key=lambda item: order.index(item[0]) if item[0] in order else len(order))
        axis.boxplot([g[column].to_numpy() for _, g in groups], showmeans=True)
        axis.set_xticks(range(1, len(groups) + 1), [str(name) for name, _ in groups], fontsize=8)
        axis.set_title(_label(design.settings, key), fontsize=9)
        axis.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel(f"{column} per client (final round)")
    figure.suptitle("Per-client distribution, clients of all seeds pooled (fairness)", fontsize=10)
    return _render(f"clients_{column}", figure)


def _safe(outcome: str) -> str:
    return outcome.replace(":", "_")
