"""``simfl report``: compare sweeps and runs with CIs, paired tests and a winner map."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()

WANDB_MODES = ("offline", "online", "disabled")
CI_METHODS = ("t", "bootstrap")


def report_command(
    directories: Annotated[
        list[Path],
        typer.Argument(
            help="Sweep directories (results/sweeps/<id>; shards and extra seeds merge by cell "
            "values) and/or run directories (results/<run>)."
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default: first dir/report).")
    ] = None,
    x: Annotated[
        str | None,
        typer.Option("--x", help="Swept key for the winner map's columns (default: first axis)."),
    ] = None,
    y: Annotated[
        str,
        typer.Option(
            "--y",
            help="Outcome: any metrics.parquet column (final value; best:/min:/mean:/sum: "
            "prefixes aggregate over rounds) or rounds_to_target, time_to_target_s, bytes_total, "
            "mb_total, s_per_round.",
        ),
    ] = "central_accuracy",
    by: Annotated[
        str | None,
        typer.Option("--by", help="Swept key of the competitors (default: strategy.name)."),
    ] = None,
    target: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Accuracy for the *_to_target outcomes.")
    ] = 0.5,
    alpha: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Significance level of the paired tests.")
    ] = 0.05,
    confidence: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="Confidence level of the intervals.")
    ] = 0.95,
    ci: Annotated[str, typer.Option("--ci", help="Interval over seeds: t or bootstrap.")] = "t",
    target_halfwidth: Annotated[
        float,
        typer.Option(
            "--target-halfwidth",
            min=1e-6,
            help="Half-width of the paired-difference interval the seeds-needed figures aim at.",
        ),
    ] = 0.02,
    wandb: Annotated[
        str,
        typer.Option("--wandb", help="Log the tables to W&B: offline, online or disabled."),
    ] = "disabled",
    wandb_report: Annotated[
        bool,
        typer.Option(
            "--wandb-report",
            help="Build a W&B Report of the sweep's group: saved with --wandb online, else its "
            "spec is written to <first dir>/wandb_report.json.",
        ),
    ] = False,
    mlflow: Annotated[
        bool,
        typer.Option(
            "--mlflow/--no-mlflow",
            help="Attach the report to the sweep's MLflow run, where the sweep logged to MLflow.",
        ),
    ] = True,
) -> None:
    """Winner map, average ranks and a comparison table (mean, 95% CI, paired Holm tests)."""
    from simfl.errors import ScenarioError
    from simfl.report.build import ReportOptions, build_report

    if wandb not in WANDB_MODES:
        raise ScenarioError(f"--wandb {wandb!r}: allowed: {', '.join(WANDB_MODES)}")
    if ci not in CI_METHODS:
        raise ScenarioError(f"--ci {ci!r}: allowed: {', '.join(CI_METHODS)}")
    for directory in directories:
        if not directory.is_dir():
            raise ScenarioError(f"{directory}: no such directory; pass a sweep or run directory")
    if mlflow:  # its store is reached before anything is written
        from simfl.tracking.mlflow_sweep import check_report_target

        check_report_target(directories[0])
    options = ReportOptions(
        x,
        y,
        by,
        target,
        alpha,
        confidence,
        ci,
        target_halfwidth,  # type: ignore[arg-type]
    )
    report = build_report(directories, out, options)
    for note in report.notes:
        console.print(note, markup=False, highlight=False)
    console.print(report.markdown, markup=False, highlight=False, soft_wrap=True)
    console.print(f"report: {report.directory / 'report.html'} (and .md, .tex, .csv, figures)")
    if wandb != "disabled" and not report.comparison.empty:
        from simfl.tracking.wandb_logger import log_table

        log_table(report.comparison, "report", report.results.sources[0], wandb, report.directory)
    if wandb_report:
        _wandb_report(report, directories[0], online=wandb == "online")
    if mlflow:
        from simfl.tracking.mlflow_sweep import attach_report

        run_id = attach_report(directories[0], report.directory)
        if run_id is not None:
            console.print(f"MLflow: report attached to the sweep's run {run_id}")


def _wandb_report(report, directory: Path, online: bool) -> None:
    from simfl.report.wandb_report import report_for

    built = report_for(report)
    if online:
        from simfl.report.wandb_report import publish

        console.print(f"W&B report: {publish(built)}")
        return
    from simfl.report.wandb_report import write_spec

    path = write_spec(built, directory / "wandb_report.json")
    console.print(
        f"W&B report spec: {path}; publish it with `simfl report {directory} --wandb-report "
        "--wandb online`"
    )
