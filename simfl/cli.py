"""``simfl``: run, validate and list scenarios, prepare data."""

from __future__ import annotations

import gc
import os
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from simfl.engine.interrupt import RunInterrupted
from simfl.errors import ScenarioError, SimflError

errors = Console(stderr=True)


def report_error(error: SimflError) -> None:
    """The error in one line on stderr (a client traceback, if any, follows as notes)."""
    errors.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    for note in getattr(error, "__notes__", []):
        errors.print(escape(note), highlight=False, soft_wrap=True)


class SimflGroup(TyperGroup):
    """Every command's SimflError becomes one line on stderr and its exit code (2: bad input).

    Handled in the click group rather than only in :func:`main`, so ``typer.testing.CliRunner``
    sees exactly what a shell sees.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SimflError as error:
            report_error(error)
            ctx.exit(error.exit_code)
        except RunInterrupted as stop:  # a stop signal: one line, the signal's exit code
            errors.print(escape(stop.line), soft_wrap=True, highlight=False)
            ctx.exit(stop.exit_code)
        except click.UsageError as error:  # a bad flag or argument: one line too
            if type(error).__name__ == "NoArgsIsHelpError":
                raise
            command = error.ctx.command_path if error.ctx else ctx.command_path
            message = " ".join(error.format_message().split())
            errors.print(f"[red]error:[/] {escape(f'{command}: {message}')}", soft_wrap=True)
            ctx.exit(error.exit_code)


app = typer.Typer(
    cls=SimflGroup,
    help="Federated-learning simulation benchmarks for speech, on Flower's Ray engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Build and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a scenario key: dotted.key=value (repeatable)."),
]
# readable=False: simfl's own reader refuses unreadable files in its one-line format.
ScenarioArg = Annotated[
    Path, typer.Argument(help="Scenario TOML file.", show_default=False, readable=False)
]


MlflowOption = Annotated[
    str | None,
    typer.Option(
        "--mlflow",
        help="Also log to MLflow: http(s)://HOST:PORT, sqlite:///FILE or a local path "
        "(default: the scenario's tracking.mlflow_uri).",
        show_default=False,
    ),
]


class WandbMode(StrEnum):
    offline = "offline"
    online = "online"
    disabled = "disabled"


def _load(path: Path, overrides: list[str] | None):
    from simfl.config import load_scenario

    return load_scenario(path, overrides or [])


@app.command()
def run(
    scenario_file: Annotated[
        Path | None,
        typer.Argument(help="Scenario TOML file.", show_default=False, readable=False),
    ] = None,
    set_: SetOption = None,
    wandb: Annotated[
        WandbMode | None, typer.Option("--wandb", help="W&B mode (default: the scenario's).")
    ] = None,
    mlflow: MlflowOption = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Continue this interrupted run directory from its last checkpoint.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Flower's debug logs.")] = False,
) -> None:
    """Run a scenario end to end and write results/<scenario>-<time>-<hash>/ (or --resume one)."""
    from simfl.console import RunDisplay, summary_table
    from simfl.engine.gpu_packing import require_cuda
    from simfl.engine.interrupt import Interruption
    from simfl.run import RunOptions, run_scenario
    from simfl.tracking.options import mlflow_flag

    mlflow = mlflow_flag(mlflow)
    if resume is not None:
        scenario = _resumable(resume, scenario_file, set_)
        console.print(_resume_point(resume), soft_wrap=True, highlight=False)
    elif scenario_file is None:
        raise ScenarioError("simfl run: give a scenario file, or --resume RUN_DIR")
    else:
        scenario = _load(scenario_file, set_)
    if mlflow:  # the resolved scenario (scenario.toml) keeps it: --resume tracks on
        tracking = scenario.tracking.model_copy(update={"mlflow_uri": mlflow})
        scenario = scenario.model_copy(update={"tracking": tracking})
    require_cuda(scenario)  # before the live display starts: the refusal is the only output
    interruption = Interruption()
    with interruption.handling_signals(), RunDisplay(console) as display:
        options = RunOptions(
            wandb_mode=wandb.value if wandb else None,
            trackers=[display],
            progress=display,
            verbose=verbose,
            run_dir=resume,
            resume=resume is not None,
            interruption=interruption,
        )
        outcome = run_scenario(scenario, options)
    console.print(summary_table(outcome.summary))
    console.print(f"results: {outcome.run_dir}")


def _resumable(run_dir: Path, scenario_file: Path | None, overrides: list[str] | None):
    """The scenario of an interrupted run directory, or a one-line reason it cannot resume."""
    import json

    if scenario_file is not None or overrides:
        raise ScenarioError(
            "--resume: the run directory holds its scenario; give no scenario file or --set"
        )
    if not run_dir.is_dir():
        raise ScenarioError(f"--resume {run_dir}: no such run directory")
    resolved = run_dir / "scenario.toml"
    if not resolved.is_file():
        raise ScenarioError(f"--resume {run_dir}: not a run directory (no scenario.toml)")
    summary = run_dir / "summary.json"
    try:
        status = json.loads(summary.read_text()).get("status") if summary.is_file() else None
    except (OSError, ValueError, AttributeError):
        status = None  # an unreadable summary: the run did not finish cleanly
    if status == "completed":
        raise ScenarioError(f"--resume {run_dir}: the run is already completed")
    return _load(resolved, None)


def _resume_point(run_dir: Path) -> str:
    from simfl.engine.checkpoint import latest_checkpoint_dir

    checkpoint = latest_checkpoint_dir(run_dir)
    if checkpoint is None:
        return f"resuming {run_dir}: no checkpoint yet, starting again from round 0"
    return f"resuming {run_dir} after round {int(checkpoint.name.removeprefix('round-'))}"


@app.command()
def validate(scenario_file: ScenarioArg, set_: SetOption = None) -> None:
    """Check a scenario file and print its resolved form and hash."""
    scenario = _load(scenario_file, set_)
    console.print(scenario.to_toml(), markup=False, highlight=False)
    console.print(f"# valid; hash {scenario.full_hash()}")
    for line in scenario.deprecations:  # one line each, on stderr: stdout stays the scenario
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command("list")
def list_registry(
    details: Annotated[
        bool,
        typer.Option(
            "--details",
            help="Also each strategy's paper, rule as run, differences from the paper and the "
            "settings that select the paper's rule.",
        ),
    ] = False,
) -> None:
    """List the datasets, models, strategies and partitioners a scenario can name."""
    from simfl import plugins, registry

    tables = {**registry.TABLES, "features": plugins.FEATURES, "trackers": plugins.TRACKERS}
    for title, table in tables.items():
        view = Table(title=title, show_header=False, title_justify="left")
        for name, entry in table.items():
            view.add_row(name, escape(entry.summary))  # "[privacy.he]" is text, not markup
        console.print(view)
    if details:
        from simfl.strategies.fidelity import details_text

        console.print(details_text(), markup=False, highlight=False, soft_wrap=True)


@data_app.command("prepare")
def data_prepare(
    scenario_file: Annotated[
        Path, typer.Argument(help="Scenario whose [data] to build.", readable=False)
    ] = Path("scenarios/quickstart.toml"),
    set_: SetOption = None,
) -> None:
    """Build a scenario's dataset and its cached features (synthesizes synth-commands)."""
    from simfl.console import RunDisplay
    from simfl.pipeline import prepare_scenario_data

    scenario = _load(scenario_file, set_)
    with RunDisplay(console) as display:
        data = prepare_scenario_data(scenario, display)
    console.print(
        f"{scenario.data.dataset} ({scenario.data.view}): {len(data.train.rows)} train and "
        f"{len(data.test.rows)} test clips, {data.num_classes} classes; "
        f"features in {data.train.store_dir.parent}"
    )


def _register_commands() -> None:
    """Commands that live in their own packages, so each family keeps its code together."""
    from simfl.bench_command import bench_command
    from simfl.claims.command import claims_command
    from simfl.report.command import report_command
    from simfl.sweep.command import sweep_command

    app.command("sweep")(sweep_command)
    app.command("report")(report_command)
    app.command("claims")(claims_command)
    app.command(
        "bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )(bench_command)


_register_commands()


@app.command()
def partition(
    scenario_file: ScenarioArg,
    set_: SetOption = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Also save the partition figure (PNG) here.")
    ] = None,
) -> None:
    """Split a scenario's data among its clients; print per-client statistics and scores."""
    import shutil

    from partitioners.report import clients_tables, scores_table
    from simfl.console import RunDisplay
    from simfl.pipeline import prepare_run

    scenario = _load(scenario_file, set_)
    if plot is not None and plot.suffix.lower() != ".png":
        raise ScenarioError(f"--plot {plot}: the figure is a PNG; give a path ending in .png")
    with RunDisplay(console) as display:
        federation = prepare_run(scenario, display).federation
    for table in clients_tables(federation.clients, f"{scenario.partition.kind} split"):
        console.print(table)
    console.print(scores_table(federation.scores))
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        console.print(f"figure: {shutil.copyfile(federation.figure, plot)}")


@app.command("privacy-report")
def privacy_report(
    sweep_dir: Annotated[Path, typer.Argument(help="A sweep directory (results/sweeps/<id>).")],
) -> None:
    """Privacy-utility plots of a DP sweep: final accuracy and MIA AUC against epsilon."""
    from simfl.privacy.report import write_privacy_report

    figure = write_privacy_report(sweep_dir)
    console.print((figure.parent / "privacy_utility.md").read_text())
    console.print(f"figure: {figure}")


def invoke(args: list[str] | None = None) -> int:
    """Run the CLI on ``args`` (default: the command line) in this process; the exit code.

    One clear line per error and exit code 2 for bad input; the tests call this directly, so
    a refusal costs no new interpreter.
    """
    try:
        app(args=args, prog_name="simfl")
    except SystemExit as done:  # click ends every command this way (SimflGroup reports errors)
        return done.code if isinstance(done.code, int) else int(done.code is not None)
    except SimflError as error:  # raised outside a command
        report_error(error)
        return error.exit_code
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/]")
        return 130
    return 0


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # our own bars instead
    # A write past the file-size limit (ulimit -f) must fail with EFBIG, which simfl reports
    # in one line with the run left resumable, not kill the process (SIGXFSZ's default).
    # CPython ignores it at start-up; set here too, so it holds however simfl was started.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    code = invoke()
    # Everything is written (atomically, durably); what is left is the interpreter's teardown,
    # whose garbage collections would walk every object torch, Ray, Flower and pandas made.
    # Frozen objects are skipped; atexit handlers (Ray's shutdown) still run.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    main()
