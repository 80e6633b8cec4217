"""The report's figures, drawn with matplotlib (Agg) and returned as PNG bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

HETEROGENEITY_PREFIX = "partition."
RESOURCE_AXES = ("resources.num_cpus", "resources.num_gpus")


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=130)
    plt.close(figure)
    return buffer.getvalue()


def _group_label(keys: list[str], key: tuple) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys, key, strict=True)) or "all"


def accuracy_curves(rounds: pd.DataFrame, cells: pd.DataFrame, keys: list[str]) -> bytes:
    """Central accuracy per round, mean over seeds with a ±std band, one line per grid point."""
    data = rounds.merge(cells[["cell_id", *keys]], on="cell_id")
    figure, axis = plt.subplots(figsize=(7, 4.2))
    groups = data.groupby(keys, dropna=False) if keys else [((), data)]
    for key, frame in groups:
        key = key if isinstance(key, tuple) else (key,)
        stats = frame.groupby("round")["central_accuracy"].agg(["mean", "std"]).fillna(0.0)
        axis.plot(stats.index, stats["mean"], label=_group_label(keys, key))
        axis.fill_between(
            stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.2
        )
    axis.set(
        xlabel="round",
        ylabel="central test accuracy",
        title="Accuracy vs round (mean ± std over seeds)",
    )
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return _png(figure)


def _knob_plot(table: pd.DataFrame, knob: str, keys: list[str], metric: str, ylabel: str) -> bytes:
    others = [k for k in keys if k != knob]
    figure, axis = plt.subplots(figsize=(6, 4))
    groups = table.groupby(others, dropna=False) if others else [((), table)]
    for key, frame in groups:
        key = key if isinstance(key, tuple) else (key,)
        frame = frame.sort_values(knob)
        axis.errorbar(
            frame[knob],
            frame[f"{metric}_mean"],
            yerr=frame[f"{metric}_std"],
            marker="o",
            capsize=3,
            label=_group_label(others, key),
        )
    values = pd.to_numeric(table[knob])
    if values.min() > 0 and values.max() / values.min() >= 10:
        axis.set_xscale("log")
    axis.set(xlabel=knob, ylabel=ylabel, title=f"{ylabel} vs {knob}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return _png(figure)


def numeric_axes(table: pd.DataFrame, keys: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [
        k
        for k in keys
        if k.startswith(prefixes)
        and pd.api.types.is_numeric_dtype(table[k])
        and table[k].nunique() > 1
    ]


def figures(results, table: pd.DataFrame) -> dict[str, bytes]:
    """Every figure that the sweep's axes allow, by file name."""
    keys = results.group_axes
    out = {"accuracy_vs_round.png": accuracy_curves(results.rounds, results.cells, keys)}
    for knob in numeric_axes(table, keys, (HETEROGENEITY_PREFIX,)):
        name = f"final_accuracy_vs_{knob.split('.')[-1]}.png"
        out[name] = _knob_plot(table, knob, keys, "final_acc", "final central accuracy")
    for knob in numeric_axes(table, keys, RESOURCE_AXES):
        name = f"seconds_per_round_vs_{knob.split('.')[-1]}.png"
        out[name] = _knob_plot(table, knob, keys, "s_per_round", "seconds per round")
    return out
