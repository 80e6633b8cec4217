"""``simfl report``: compare a sweep's cells (shards merge) in Markdown, HTML and W&B."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def report_command(
    sweep_dirs: Annotated[
        list[Path], typer.Argument(help="results/sweeps/<sweep-id> directories (shards merge).")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default: first dir/report).")
    ] = None,
    target: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Accuracy for the rounds-to-target column.")
    ] = 0.5,
    wandb: Annotated[
        str, typer.Option("--wandb", help="Log the table to W&B: offline, online or disabled.")
    ] = "disabled",
) -> None:
    """Comparison table (mean ± std over seeds) and plots for one sweep; partial sweeps work."""
    from simfl.errors import ScenarioError
    from simfl.report.build import build_report

    if wandb not in ("offline", "online", "disabled"):
        raise ScenarioError(f"--wandb {wandb!r}: allowed: offline, online, disabled")
    report = build_report(sweep_dirs, out, target)
    console.print(report.markdown, markup=False, highlight=False)
    if report.missing:
        console.print(f"[yellow]{len(report.missing)} cell(s) missing: {', '.join(report.missing)}")
    console.print(f"report: {report.directory / 'report.html'} and report.md")
    if wandb != "disabled" and not report.table.empty:
        from simfl.tracking.wandb_logger import log_table

        log_table(report.table, "report", sweep_dirs[0].name, wandb, report.directory)
