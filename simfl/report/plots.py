"""The report's figures (matplotlib, Agg), each returned as PNG and SVG bytes.

* a metric per round, mean over seeds with a 95% interval band (inside the metric's range, as
  in the tables), one line per group;
* the winner map: competitors × settings heat map, colour scaled per setting (column) so the
  winner stands out even where settings differ in scale, winner bold, ties marked ``≈``;
* the outcome against a numeric ``--x`` with CI error bars, one line per competitor;
* per-client accuracy at the final round (box plots, clients of every seed pooled): fairness.

A competitor keeps one colour in the curves and the ``--x`` plot, and the other settings take
line styles, so a reader matches lines by colour alone. Legends sit below the axes (they never
cover a curve); proportions are drawn inside [0, 1] and rounds get integer ticks. Each figure
has a ``*_figure`` builder returning the matplotlib figure, which the tests inspect.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullLocator  # noqa: E402

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


LEGEND_FONT = 9
LINESTYLES = ("-", "--", ":", "-.")


def _render(name: str, figure: plt.Figure) -> Figure:
    """PNG and SVG bytes of a figure built with the constrained layout (which makes room for
    legends outside the axes), then closed."""
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


def _palette(count: int) -> list:
    """Distinct colours: tab10 up to 10, tab20 beyond (the default cycle repeats after 10)."""
    cmap = plt.get_cmap("tab10" if count <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(count)]


def line_styles(keys: list[str], groups: list[tuple], by: str | None) -> dict[tuple, dict]:
    """Colour per competitor (``by``) and line style per setting; with more settings than line
    styles, or no competitor axis, a colour per line instead."""
    if by in keys:
        at = keys.index(by)
        rest = lambda group: group[:at] + group[at + 1 :]  # noqa: E731
        competitors = sorted({g[at] for g in groups}, key=str)
        settings = sorted({rest(g) for g in groups}, key=str)
        if len(settings) <= len(LINESTYLES):
            colours = dict(zip(competitors, _palette(len(competitors)), strict=True))
            return {
                g: {"color": colours[g[at]], "linestyle": LINESTYLES[settings.index(rest(g))]}
                for g in groups
            }
    colours = _palette(len(groups))
    return {g: {"color": c, "linestyle": "-"} for g, c in zip(groups, colours, strict=True)}


def _groups(frame: pd.DataFrame, keys: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    if not keys:
        return [((), frame)]
    groups = frame.groupby(keys, sort=True)
    return [(key if isinstance(key, tuple) else (key,), part) for key, part in groups]


def _legend_below(figure: plt.Figure, axis: Axes) -> None:
    """The lines' legend under the axes: inside, it would hide whichever curve it sits on."""
    handles, labels = axis.get_legend_handles_labels()
    if handles:
        figure.legend(
            handles,
            labels,
            loc="outside lower center",
            ncol=min(3, len(handles)),
            fontsize=LEGEND_FONT,
            frameon=False,
        )


def proportion_limits(axis: Axes, column: str) -> None:
    """Keep a proportion's axis inside [0, 1]: autoscale margins would reach past either end."""
    if metric_range(column).is_proportion:
        low, high = axis.get_ylim()
        axis.set_ylim(max(low, 0.0), min(high, 1.0))


def metric_curves_figure(
    rounds: pd.DataFrame, cells: pd.DataFrame, design: Design, column: str
) -> plt.Figure:
    """``column`` per round: mean over seeds and its 95% t-interval, one line per group."""
    keys = design.groups
    data = rounds.merge(cells[["cell_id", *keys]], on="cell_id")
    figure, axis = plt.subplots(figsize=(7.5, 4.6), layout="constrained")
    groups = _groups(data, keys)
    styles = line_styles(keys, [key for key, _ in groups], design.by)
    for key, frame in groups:
        band = frame.groupby("round")[column].apply(_band, bounds=metric_range(column))
        rounds_axis = band.index.to_numpy()
        mean, low, high = (np.array([b[i] for b in band]) for i in range(3))
        axis.plot(rounds_axis, mean, label=_label(keys, key), **styles[key])
        axis.fill_between(rounds_axis, low, high, alpha=0.15, color=styles[key]["color"], lw=0)
    axis.set(xlabel="round", ylabel=column, title=f"{column} vs round (mean, 95% CI over seeds)")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    proportion_limits(axis, column)
    _legend_below(figure, axis)
    return figure


def metric_curves(rounds: pd.DataFrame, cells: pd.DataFrame, design: Design, column: str) -> Figure:
    """:func:`metric_curves_figure` rendered."""
    return _render(f"{column}_vs_round", metric_curves_figure(rounds, cells, design, column))


def winner_heatmap_figure(means: pd.DataFrame, styled: StyledTable, outcome: str) -> plt.Figure:
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
    figure, axis = plt.subplots(figsize=(width, 1.0 + 0.6 * len(styled.rows)), layout="constrained")
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
    return figure


def winner_heatmap(means: pd.DataFrame, styled: StyledTable, outcome: str) -> Figure:
    """:func:`winner_heatmap_figure` rendered."""
    return _render(f"winner_map_{_safe(outcome)}", winner_heatmap_figure(means, styled, outcome))


def outcome_vs_x_figure(table: pd.DataFrame, design: Design, outcome: str) -> plt.Figure | None:
    """The outcome against a numeric ``--x``, CI error bars, one line per competitor."""
    rows = table[table["outcome"] == outcome]
    if design.x is None or not pd.api.types.is_numeric_dtype(rows[design.x]):
        return None
    figure, axis = plt.subplots(figsize=(6.5, 4.4), layout="constrained")
    others = [k for k in design.groups if k != design.x]
    groups = _groups(rows, others)
    styles = line_styles(others, [key for key, _ in groups], design.by)
    for key, frame in groups:
        frame = frame.sort_values(design.x)
        errors = np.vstack([frame["mean"] - frame["ci_low"], frame["ci_high"] - frame["mean"]])
        axis.errorbar(
            frame[design.x],
            frame["mean"],
            yerr=np.nan_to_num(errors),
            marker="o",
            capsize=3,
            label=_label(others, key),
            **styles[key],
        )
    values = pd.to_numeric(rows[design.x])
    if values.min() > 0 and values.max() / values.min() >= 10:
        axis.set_xscale("log")
    _x_ticks(axis, np.unique(values.to_numpy()))
    axis.set(xlabel=design.x, ylabel=outcome, title=f"{outcome} vs {design.x} (mean, 95% CI)")
    axis.grid(alpha=0.3)
    proportion_limits(axis, outcome)
    _legend_below(figure, axis)
    return figure


def _x_ticks(axis: Axes, values: np.ndarray) -> None:
    """Ticks at the swept values, written plainly (``0.1``, not ``10^-1``); many values: an
    integer locator where they are all whole numbers."""
    if len(values) <= 12:
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_xticks(values, [f"{v:g}" for v in values])
    elif np.all(values == np.round(values)):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def outcome_vs_x(table: pd.DataFrame, design: Design, outcome: str) -> Figure | None:
    """:func:`outcome_vs_x_figure` rendered (None where ``--x`` is not numeric)."""
    figure = outcome_vs_x_figure(table, design, outcome)
    if figure is None:
        return None
    return _render(f"{_safe(outcome)}_vs_{design.x.split('.')[-1]}", figure)


def client_boxes_figure(
    clients: pd.DataFrame, cells: pd.DataFrame, design: Design, column: str, order: list
) -> plt.Figure | None:
    """Each client's ``column`` at its cell's last evaluated round, per competitor and setting."""
    if clients.empty or column not in clients:
        return None
    last = clients[clients["round"] == clients.groupby("cell_id")["round"].transform("max")]
    data = last.merge(cells[["cell_id", *design.groups]], on="cell_id")
    settings = _groups(data, design.settings)
    figure, axes = plt.subplots(
        1,
        len(settings),
        figsize=(min(12.0, 1.5 + 3.2 * len(settings)), 4.2),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for axis, (key, frame) in zip(axes[0], settings, strict=True):
        groups = list(frame.groupby(design.by, sort=False)) if design.by else [(ALL, frame)]
        groups.sort(key=lambda item: order.index(item[0]) if item[0] in order else len(order))
        drawn = axis.boxplot([g[column].to_numpy() for _, g in groups], showmeans=True)
        names = [str(name) for name, _ in groups]
        crowded = len(names) > 3 or max(map(len, names)) > 12
        axis.set_xticks(
            range(1, len(groups) + 1),
            names,
            fontsize=LEGEND_FONT,
            rotation=30 if crowded else 0,
            ha="right" if crowded else "center",
        )
        axis.set_title(_label(design.settings, key), fontsize=LEGEND_FONT + 1)
        axis.grid(alpha=0.3, axis="y")
    proportion_limits(axes[0][0], column)
    axes[0][0].set_ylabel(f"{column} per client (final round)")
    figure.suptitle("Per-client distribution, clients of all seeds pooled (fairness)", fontsize=10)
    figure.legend(
        handles=_box_legend(drawn),
        loc="outside lower center",
        ncol=3,
        fontsize=LEGEND_FONT,
        frameon=False,
    )
    return figure


def _box_legend(drawn: dict) -> list[Line2D]:
    """What the box plot's marks mean, each swatch copied from the artist it names."""
    median = drawn["medians"][0]
    marks = [(drawn["means"][0], "mean"), (drawn["fliers"][0], "outlier (beyond 1.5 IQR)")]
    handles = [Line2D([], [], color=median.get_color(), label="median")]
    for artist, label in marks:
        handles.append(
            Line2D(
                [],
                [],
                linestyle="",
                marker=artist.get_marker(),
                markerfacecolor=artist.get_markerfacecolor(),
                markeredgecolor=artist.get_markeredgecolor(),
                label=label,
            )
        )
    return handles


def client_boxes(
    clients: pd.DataFrame, cells: pd.DataFrame, design: Design, column: str, order: list
) -> Figure | None:
    """:func:`client_boxes_figure` rendered (None without per-client results)."""
    figure = client_boxes_figure(clients, cells, design, column, order)
    return None if figure is None else _render(f"clients_{column}", figure)


def _safe(outcome: str) -> str:
    return outcome.replace(":", "_")
