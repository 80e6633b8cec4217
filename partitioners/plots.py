"""The partition figure: label mix per client, size distribution, condition per client.

Drawn from the client table alone (``partitioners.metrics.client_table``) on a bare matplotlib
``Figure`` with the Agg canvas, so no pyplot state or global backend is touched.

The figure is sized for the width the documentation and the HTML report show it at (about
800 px): 10 inches wide, so 10 pt text stays about 11 px tall there and legends (9 pt) about
10 px. Clients, samples and counts are whole numbers, so their axes only get integer ticks.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

SCORE_LABELS = {
    "label_js_distance_mean": "JS",
    "label_hellinger_mean": "Hellinger",
    "effective_labels_mean": "eff. labels",
    "size_cv": "size CV",
    "size_gini": "Gini",
    "feature_shift_score": "feature shift",
}

#: Per-client panels draw at most this many clients (evenly spaced over the population): a
#: bar per client for 10^5 clients would take minutes and show nothing a sample does not.
MAX_CLIENTS_DRAWN = 500

FIGSIZE = (10.0, 7.2)
DPI = 110
LEGEND_FONT = 9
#: Legend entries per column beside the label-mix panel before a second column starts.
LEGEND_ROWS = 18

#: Recording-condition columns in the order they are preferred for the panel: (column, axis
#: label, scale applied to the values, value that means "effect off"; NaN also means off).
CONDITIONS = (
    ("cond:snr_db", "SNR (dB)", 1.0, None),
    ("cond:lowpass_hz", "low-pass cut-off (kHz)", 1e-3, None),
    ("cond:highpass_hz", "high-pass cut-off (Hz)", 1.0, None),
    ("cond:gain_db", "gain (dB)", 1.0, 0.0),
    ("cond:speed", "speed factor", 1.0, 1.0),
    ("cond:rt60_s", "reverb RT60 (s)", 1.0, None),
)
BAR_COLOUR, DOT_COLOUR = "#55a868", "#c44e52"


def _client_axis(ax: Axes, table: pd.DataFrame) -> None:
    """Integer client ticks over exactly the clients drawn (no tick past the last client)."""
    clients = table["client"].to_numpy()
    if len(clients):
        half = _bar_width(table) / 2
        ax.set_xlim(clients.min() - half * 1.2, clients.max() + half * 1.2)
    ax.set_xlabel("client")
    integer_axis(ax.xaxis)


def integer_axis(axis) -> None:
    """Ticks only at whole numbers (clients, samples, counts), in steps of 1, 2, 5 or 10."""
    axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def partition_figure(table: pd.DataFrame, scores: dict[str, float]) -> Figure:
    """The three-panel figure, unsaved, so tests can inspect what each panel draws."""
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.3, 1.0])
    drawn = clients_drawn(table)
    _label_bars(fig.add_subplot(grid[0, :]), drawn)
    _size_distribution(fig.add_subplot(grid[1, 0]), table)
    _conditions(fig.add_subplot(grid[1, 1]), drawn)
    shown = [f"{SCORE_LABELS[k]} {scores[k]:.3g}" for k in SCORE_LABELS if k in scores]
    sampled = f" (bars: {len(drawn)} evenly spaced)" if len(drawn) < len(table) else ""
    title = f"{len(table)} clients{sampled}"
    fig.suptitle(f"{title}  |  {'  '.join(shown)}" if shown else title)
    return fig


def plot_partition(table: pd.DataFrame, scores: dict[str, float], path: Path | str) -> Path:
    """Save the three-panel figure as PNG at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partition_figure(table, scores).savefig(path, dpi=DPI, format="png")
    return path


def clients_drawn(table: pd.DataFrame) -> pd.DataFrame:
    """All clients, or :data:`MAX_CLIENTS_DRAWN` evenly spaced ones for a large population."""
    if len(table) <= MAX_CLIENTS_DRAWN:
        return table
    picks = np.linspace(0, len(table) - 1, MAX_CLIENTS_DRAWN).round().astype(int)
    return table.iloc[np.unique(picks)]


def _bar_width(table: pd.DataFrame) -> float:
    """Bars a little narrower than the spacing of the clients drawn: 1 for a whole population,
    the sampling step for an evenly spaced sample (width 1 there would be invisible)."""
    clients = table["client"].to_numpy()
    step = float(np.median(np.diff(clients))) if len(clients) > 1 else 1.0
    return step * (0.85 if len(table) <= 200 else 1.0)


def _label_bars(ax: Axes, table: pd.DataFrame) -> None:
    columns = [c for c in table if c.startswith("label:")]
    colours = _palette(len(columns))
    bottom = np.zeros(len(table))
    clients = table["client"].to_numpy()
    handles = []
    for colour, column in zip(colours, columns, strict=True):
        values = table[column].to_numpy()
        # matplotlib hides legend labels starting with "_", so "_silence_" shows as "silence"
        label = column[6:].strip("_") or column[6:]
        ax.bar(clients, values, bottom=bottom, color=colour, width=_bar_width(table))
        handles.append(Patch(facecolor=colour, label=label))
        bottom += values
    # Explicit: a zero-height segment on top of the tallest stack leaves a "sticky" bottom at
    # its top, which would cancel the autoscale margin and clip that stack at the frame.
    ax.set_ylim(0, max(float(bottom.max(initial=0)), 1.0) * 1.05)
    ax.set(ylabel="samples", title="label mix per client")
    _client_axis(ax, table)
    integer_axis(ax.yaxis)
    if handles:
        # Reversed, so the legend reads top to bottom in the order the stack does.
        ax.legend(
            handles=handles[::-1],
            fontsize=LEGEND_FONT,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            frameon=False,
            ncol=math.ceil(len(handles) / LEGEND_ROWS),
            handlelength=1.2,
            columnspacing=0.8,
            labelspacing=0.5 if len(handles) <= 12 else 0.25,
        )


def size_bin_edges(sizes: np.ndarray) -> np.ndarray:
    """Equal bins of a whole number of sizes, edges halfway between whole numbers: a narrow
    range (sizes 115 and 116) gets one bar per size instead of bars at fractional sizes."""
    bins = min(max(len(sizes) // 2, 5), 40)
    low, high = int(sizes.min()), int(sizes.max())
    width = max(1, math.ceil((high - low + 1) / bins))
    count = math.ceil((high - low + 1) / width)
    return low - 0.5 + width * np.arange(count + 1)


def _size_distribution(ax: Axes, table: pd.DataFrame) -> None:
    sizes = table["size"].to_numpy()
    ax.hist(sizes, bins=size_bin_edges(sizes), color="#4c72b0", edgecolor="white")
    mean = sizes.mean()
    ax.axvline(mean, color="black", linestyle="--", linewidth=1)
    # The mean is named in the title: a legend box would sit on some bar whatever its corner.
    title = f"size distribution (dashed: mean {mean:.1f})"
    ax.set(xlabel="client size (samples)", ylabel="clients", title=title)
    integer_axis(ax.xaxis)
    integer_axis(ax.yaxis)


def _active(table: pd.DataFrame, column: str, neutral: float | None) -> bool:
    """Whether the split sets this effect for any client (NaN or the neutral value: off)."""
    if column not in table:
        return False
    values = table[column].dropna()
    return bool(len(values)) and not (neutral is not None and (values == neutral).all())


def _conditions(ax: Axes, table: pd.DataFrame) -> None:
    active = [c for c in CONDITIONS if _active(table, c[0], c[3])]
    if active:
        _condition_bars(ax, table, active[:2])
    elif "main_accent" in table:
        _accent_bars(ax, table)
    elif "num_speakers" in table:
        ax.bar(table["client"], table["num_speakers"], color="#4c72b0", width=_bar_width(table))
        ax.set(ylabel="speakers", title="speakers per client")
        _client_axis(ax, table)
        integer_axis(ax.yaxis)
    else:
        ax.text(0.5, 0.5, "no acoustic condition", ha="center", va="center")
        ax.set_axis_off()


def _condition_bars(ax: Axes, table: pd.DataFrame, shown: list[tuple]) -> None:
    """The first active effect as bars, the second (if any) as dots on a right-hand axis; each
    axis label and its tick labels take their series' colour, which names the series."""
    clients = table["client"].to_numpy()
    column, label, scale, neutral = shown[0]
    off = np.nan if neutral is None else neutral
    ax.bar(clients, table[column].fillna(off) * scale, color=BAR_COLOUR, width=_bar_width(table))
    ax.set_title("recording condition per client")
    ax.set_ylabel(label, color=BAR_COLOUR)
    ax.tick_params(axis="y", colors=BAR_COLOUR)
    _client_axis(ax, table)
    if len(shown) > 1:
        column, label, scale, _ = shown[1]
        twin = ax.twinx()
        size = 5 if len(table) <= 60 else 2
        twin.plot(clients, table[column] * scale, "o", color=DOT_COLOUR, markersize=size)
        twin.set_ylabel(label, color=DOT_COLOUR)
        twin.tick_params(axis="y", colors=DOT_COLOUR)


def _accent_bars(ax: Axes, table: pd.DataFrame) -> None:
    """Speakers (or samples, without speaker ids) per client, coloured by the main accent."""
    names = table["main_accent"].fillna("").astype(str).replace("", "(none)")
    accents = sorted(names.unique())
    colours = dict(zip(accents, _palette(len(accents)), strict=True))
    speakers = "num_speakers" in table
    values = table["num_speakers"] if speakers else table["size"]
    ax.bar(table["client"], values, color=[colours[a] for a in names], width=_bar_width(table))
    ax.set(
        ylabel="speakers" if speakers else "samples",
        title=f"{'speakers' if speakers else 'samples'} per client (colour: main accent)",
    )
    _client_axis(ax, table)
    integer_axis(ax.yaxis)
    ax.legend(
        handles=[Patch(facecolor=colour, label=accent) for accent, colour in colours.items()],
        fontsize=LEGEND_FONT,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        ncol=math.ceil(len(colours) / 12),
        handlelength=1.2,
    )


def _palette(count: int) -> list:
    """Distinct colours: tab10, tab20, then tab20 + tab20b + tab20c (60) for 35 labels."""
    from matplotlib import colormaps

    names = ["tab20", "tab20b", "tab20c"] if count > 20 else ["tab20" if count > 10 else "tab10"]
    colours = [colormaps[name](i) for name in names for i in range(colormaps[name].N)]
    return [colours[i % len(colours)] for i in range(count)]
