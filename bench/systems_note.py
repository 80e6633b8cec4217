"""Tables and a plot for the systems sweeps (until ``simfl report`` plots against sim time).

``python bench/systems_note.py results/sweeps/<systems-async-...> [more sweep dirs]`` prints,
per sweep, a Markdown table per cell (final and best central accuracy, simulated hours,
hours to the target accuracy, rounds, clients dropped) and, over seeds, mean ± std of the
final central accuracy per configuration; it saves ``accuracy_vs_sim_time.png`` in each sweep
directory (central accuracy against simulated hours, one line per cell).
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pandas as pd


def cell_label(scenario: dict) -> str:
    """What varies between the systems sweeps' cells, in words."""
    strategy, systems = scenario["strategy"], scenario.get("systems", {})
    parts = [strategy["name"]]
    if strategy["name"] == "fedbuff":
        parts.append(f"C={strategy['concurrency']},K={strategy['buffer_size']}")
    if systems.get("over_selection"):
        parts.append(f"over-selection {systems['over_selection']}")
    if systems.get("deadline_s"):
        parts.append(f"deadline {systems['deadline_s']:g} s")
    return " ".join(parts)


def load_cells(sweep: Path) -> pd.DataFrame:
    rows = []
    for cell in sorted((sweep / "cells").iterdir()):
        if not (cell / "metrics.parquet").exists():
            continue
        if json.loads((cell / "summary.json").read_text()).get("status") != "completed":
            continue
        scenario = tomllib.loads((cell / "scenario.toml").read_text())
        summary = json.loads((cell / "summary.json").read_text())
        metrics = pd.read_parquet(cell / "metrics.parquet")
        trained = metrics[metrics["round"] > 0]
        rows.append(
            {
                "cell": cell.name,
                "config": cell_label(scenario),
                "seed": scenario["scenario"]["seed"],
                "status": summary.get("status"),
                "rounds": int(metrics["round"].max()),
                "final_acc": metrics["central_accuracy"].iloc[-1],
                "best_acc": metrics["central_accuracy"].max(),
                "sim_h": metrics.get("sim_time_h", pd.Series([float("nan")])).iloc[-1],
                "h_to_target": metrics.get("sim_hours_to_target", pd.Series([float("nan")])).iloc[
                    -1
                ],
                "dropped_deadline": trained.get("clients_dropped_deadline", pd.Series()).sum(),
                "metrics": metrics,
            }
        )
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table (pandas' ``to_markdown`` needs tabulate, which simfl does not ship)."""
    cell = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def plot(cells: pd.DataFrame, path: Path) -> None:
    """Accuracy against simulated hours: one colour per configuration, one line style per
    seed, the legend below the axes (it never covers a curve), accuracy within [0, 1]."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    configs = sorted(cells["config"].unique())
    seeds = sorted(cells["seed"].unique())
    colours = colormaps["tab10"].colors
    styles = ["-", "--", ":", "-."]
    for _, cell in cells.sort_values(["config", "seed"]).iterrows():
        metrics = cell["metrics"]
        if "sim_time_h" not in metrics:
            continue
        axes.plot(
            metrics["sim_time_h"],
            metrics["central_accuracy"],
            marker=".",
            color=colours[configs.index(cell["config"]) % len(colours)],
            linestyle=styles[seeds.index(cell["seed"]) % len(styles)],
            label=f"{cell['config']} (seed {cell['seed']})",
        )
    axes.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="accuracy 0.5")
    axes.set_ylim(0, 1)
    axes.set_xlabel("simulated time (h)")
    axes.set_ylabel("central accuracy")
    axes.grid(alpha=0.3)
    figure.legend(loc="outside lower center", ncols=min(3, len(cells) + 1), fontsize=9)
    figure.savefig(path, dpi=120)


def main(sweeps: list[str]) -> None:
    for sweep in map(Path, sweeps):
        cells = load_cells(sweep)
        if cells.empty:
            print(f"{sweep}: no finished cells")
            continue
        print(f"## {sweep.name}\n")
        table = cells.drop(columns=["metrics"]).sort_values(["config", "seed"])
        print(markdown(table))
        grouped = cells.groupby("config")["final_acc"].agg(["mean", "std", "count"])
        print("\nfinal central accuracy over seeds (mean ± std):\n")
        for config, row in grouped.iterrows():
            print(f"- {config}: {row['mean']:.3f} ± {row['std']:.3f} (n = {int(row['count'])})")
        if cells["sim_h"].gt(1e-3).any():  # hours of simulated time, not just a clock at 0
            plot(cells, sweep / "accuracy_vs_sim_time.png")
            print(f"\nplot: {sweep / 'accuracy_vs_sim_time.png'}")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
