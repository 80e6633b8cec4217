"""The partition figure: label mix per client, size distribution, condition per client.

Drawn from the client table alone (``partitioners.metrics.client_table``) on a bare matplotlib
``Figure`` with the Agg canvas, so no pyplot state or global backend is touched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
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


def plot_partition(table: pd.DataFrame, scores: dict[str, float], path: Path | str) -> Path:
    """Save the three-panel figure as PNG at ``path``."""
    fig = Figure(figsize=(13, 8.5), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.3, 1.0])
    drawn = clients_drawn(table)
    _label_bars(fig.add_subplot(grid[0, :]), drawn)
    _size_distribution(fig.add_subplot(grid[1, 0]), table)
    _conditions(fig.add_subplot(grid[1, 1]), drawn)
    shown = [f"{SCORE_LABELS[k]} {scores[k]:.3g}" for k in SCORE_LABELS if k in scores]
    sampled = f" (bars: {len(drawn)} evenly spaced)" if len(drawn) < len(table) else ""
    fig.suptitle(f"{len(table)} clients{sampled}  |  " + "  ".join(shown))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")
    return path


def clients_drawn(table: pd.DataFrame) -> pd.DataFrame:
    """All clients, or :data:`MAX_CLIENTS_DRAWN` evenly spaced ones for a large population."""
    if len(table) <= MAX_CLIENTS_DRAWN:
        return table
    picks = np.linspace(0, len(table) - 1, MAX_CLIENTS_DRAWN).round().astype(int)
    return table.iloc[np.unique(picks)]


def _label_bars(ax, table: pd.DataFrame) -> None:
    columns = [c for c in table if c.startswith("label:")]
    colours = _palette(len(columns))
    bottom = np.zeros(len(table))
    clients = table["client"].to_numpy()
    width = 0.85 if len(table) <= 200 else 1.0
    for colour, column in zip(colours, columns, strict=True):
        values = table[column].to_numpy()
        # matplotlib hides legend labels starting with "_", so "_silence_" shows as "silence"
        label = column[6:].strip("_") or column[6:]
        ax.bar(clients, values, bottom=bottom, color=colour, width=width, label=label)
        bottom += values
    ax.set(xlabel="client", ylabel="samples", title="label mix per client")
    ax.margins(x=0.005)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if columns:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def _size_distribution(ax, table: pd.DataFrame) -> None:
    sizes = table["size"].to_numpy()
    bins = min(max(len(sizes) // 2, 5), 40)
    ax.hist(sizes, bins=bins, color="#4c72b0", edgecolor="white")
    ax.axvline(sizes.mean(), color="black", linestyle="--", linewidth=1, label="mean")
    ax.set(xlabel="client size (samples)", ylabel="clients", title="size distribution")
    ax.legend(frameon=False)


def _conditions(ax, table: pd.DataFrame) -> None:
    clients = table["client"].to_numpy()
    if "cond:snr_db" in table and table["cond:snr_db"].notna().any():
        ax.bar(clients, table["cond:snr_db"].fillna(0), color="#55a868", label="SNR (dB)")
        ax.set(xlabel="client", ylabel="SNR (dB)", title="recording condition per client")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if "cond:lowpass_hz" in table and table["cond:lowpass_hz"].notna().any():
            twin = ax.twinx()
            twin.plot(clients, table["cond:lowpass_hz"] / 1000, "o", color="#c44e52")
            twin.set_ylabel("low-pass cut-off (kHz)", color="#c44e52")
        return
    if "main_accent" in table:
        accents = sorted(table["main_accent"].unique())
        colours = dict(zip(accents, _palette(len(accents)), strict=True))
        values = table.get("num_speakers", table["size"])
        ax.bar(clients, values, color=[colours[a] for a in table["main_accent"]])
        for accent, colour in colours.items():
            ax.bar([], [], color=colour, label=accent)
        ax.legend(fontsize=7, frameon=False, ncol=2)
        ax.set(xlabel="client", ylabel="speakers", title="speakers per client (colour: accent)")
        return
    ax.text(0.5, 0.5, "no acoustic condition", ha="center", va="center")
    ax.set_axis_off()


def _palette(count: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if count > 10 else "tab10"]
    return [cmap(i % cmap.N) for i in range(count)]
