"""What a person sees in the terminal: stage progress, a round progress bar, a summary table."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simfl.engine.records import ClientFailure, RoundRecord
from simfl.tracking.callbacks import RunCallback, RunInfo


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[latest]}"),
        console=console,
        transient=False,
    )


def _fmt(value: float, digits: int = 3) -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "-" if missing else f"{value:.{digits}f}"


class RunDisplay(RunCallback):
    """One live progress display: a bar per data-preparation stage, then one over rounds.

    Call it as ``display(stage, done, total)`` for stages; pass it as a run callback for rounds.
    """

    def __init__(self, console: Console) -> None:
        self.progress = _progress(console)
        self.stages: dict[str, Any] = {}
        self.rounds: Any = None

    def __enter__(self) -> RunDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.stages:
            self.stages[stage] = self.progress.add_task(stage, total=total, latest="")
        self.progress.update(self.stages[stage], completed=done, total=total)

    def on_run_start(self, info: RunInfo) -> None:
        self.progress.console.print(f"[bold]run[/] {info.run_name}: {info.run_dir}")
        self.rounds = self.progress.add_task(
            "rounds", total=info.scenario.scenario.rounds, latest=""
        )

    def on_round_end(self, record: RoundRecord) -> None:
        latest = (
            f"central acc {_fmt(record.get('central_accuracy'))}"
            f"  loss {_fmt(record.get('central_loss'))}"
            f"  fed acc {_fmt(record.get('fed_accuracy_mean'))}"
            f"  pers acc {_fmt(record.get('pers_accuracy_mean'))}  failed {record.clients_failed}"
        )
        if "central_wer" in record.metrics:  # a transcription task
            latest = f"central WER {_fmt(record.get('central_wer'))}  " + latest
        self.progress.update(self.rounds, completed=record.round, latest=latest)

    def on_client_failures(self, failures: list[ClientFailure]) -> None:
        self.progress.console.print(
            f"[yellow]round {failures[0].round}: {len(failures)} client "
            f"{failures[0].phase} failure(s)"
        )


#: Final metrics the summary table shows on lines of their own (the rest follow by name).
SHOWN_FINAL = {
    "central_accuracy",
    "central_loss",
    "fed_accuracy_mean",
    "fed_accuracy_worst10",
    "pers_accuracy_mean",
    "pers_accuracy_worst10",
    "central_wer",
    "central_cer",
    "fed_wer_mean",
}


def summary_table(summary: dict[str, Any]) -> Table:
    """The run at a glance; every final metric a component added appears, by name, too."""
    table = Table(title=f"{summary['run_name']} ({summary['status']})", show_header=False)
    final, best, timings = summary["final"], summary["best"], summary["timings"]
    rows = [
        ("final central accuracy", _fmt(final.get("central_accuracy"))),
        ("best central accuracy", f"{_fmt(best['central_accuracy'])} (round {best['round']})"),
        ("chance accuracy", _fmt(summary["chance_accuracy"])),
        ("final central loss", _fmt(final.get("central_loss"))),
        ("final federated accuracy (mean)", _fmt(final.get("fed_accuracy_mean"))),
        ("final federated accuracy (worst 10%)", _fmt(final.get("fed_accuracy_worst10"))),
        ("final personalized accuracy (mean)", _fmt(final.get("pers_accuracy_mean"))),
        ("final personalized accuracy (worst 10%)", _fmt(final.get("pers_accuracy_worst10"))),
        ("rounds completed", f"{summary['rounds_completed']}/{summary['rounds_planned']}"),
        ("client failures", str(summary["clients_failed"])),
        ("mean seconds per round", _fmt(timings["mean_round_s"], 2)),
        ("data preparation seconds", _fmt(timings["data_prep_s"], 1)),
        ("engine start-up seconds", _fmt(timings.get("engine_start_s"), 1)),
        ("total seconds", _fmt(timings["total_s"], 1)),
        (
            "MB down / up",
            f"{summary['communication']['bytes_down'] / 1e6:.1f} / "
            f"{summary['communication']['bytes_up'] / 1e6:.1f}",
        ),
    ]
    if final.get("central_wer") is not None:
        rows[:0] = [
            ("final central WER / CER", f"{_fmt(final['central_wer'])} / "
             f"{_fmt(final.get('central_cer'))}"),
            ("final federated WER (mean)", _fmt(final.get("fed_wer_mean"))),
        ]  # fmt: skip
    rows += [
        (f"final {name}", _fmt(value, 4))
        for name, value in final.items()
        if name not in SHOWN_FINAL and value is not None
    ]
    packing = summary.get("gpu_packing")
    if packing:
        asked, on = packing["clients_per_gpu_asked"], packing["measured_on"]
        rows.append(("clients per GPU", f"{packing['clients_per_gpu']} (asked {asked}; {on})"))
    if summary.get("stopped"):
        rows.append(("stopped early", summary["stopped"]))
    model = summary.get("model")
    if model:
        rows.append(("model", f"{model['name']}, {model['init']}"))
        rows.append(("update / full model", f"{model['update_fraction']:.1%}"))
    for name, value in rows:
        table.add_row(name, value)
    return table
