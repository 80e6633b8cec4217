"""The results directory of one run: scenario, metrics per round, partition, summary.

Every file is rewritten atomically when it changes, so an interrupted run leaves complete files
and a ``summary.json`` whose ``status`` says ``running`` or ``failed``, never ``completed``.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from simfl.atomic import write_atomically, write_json, write_table, write_text
from simfl.config import Scenario
from simfl.engine.records import ClientEvaluation, ClientFailure, RoundRecord
from simfl.tracking.callbacks import RunCallback, RunInfo


def new_run_dir(scenario: Scenario, now: datetime | None = None) -> Path:
    """``<results>/<scenario>-<UTC time>-<short hash>``, made unique if that exists already."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = Path(scenario.tracking.results_dir) / (
        f"{scenario.scenario.name}-{stamp}-{scenario.short_hash()}"
    )
    candidate, suffix = base, 1
    while candidate.exists():
        candidate, suffix = base.with_name(f"{base.name}-{suffix}"), suffix + 1
    return candidate


class ResultsWriter(RunCallback):
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.rounds: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.client_rows: list[dict[str, Any]] = []

    def on_run_start(self, info: RunInfo) -> None:
        from partitioners.plots import plot_partition  # matplotlib, only when no figure is cached

        self.run_dir.mkdir(parents=True, exist_ok=False)
        write_text(self.run_dir / "scenario.toml", info.scenario.to_toml())
        write_table(self.run_dir / "partition", info.partition_clients)
        write_json(self.run_dir / "partition_summary.json", info.partition_scores)
        figure = info.partition_figure
        write_atomically(
            self.run_dir / "partition.png",
            (lambda tmp: shutil.copyfile(figure, tmp))
            if figure is not None and figure.is_file()
            else (lambda tmp: plot_partition(info.partition_clients, info.partition_scores, tmp)),
        )
        write_json(self.run_dir / "summary.json", {"status": "running", **info.header()})

    def on_round_end(self, record: RoundRecord) -> None:
        self.rounds.append(record.as_row())
        write_table(self.run_dir / "metrics", pd.DataFrame(self.rounds))

    def on_client_failures(self, failures: list[ClientFailure]) -> None:
        self.failures.extend(asdict(failure) for failure in failures)
        write_json(self.run_dir / "failures.json", self.failures)

    def on_client_evaluations(self, evaluations: list[ClientEvaluation]) -> None:
        self.client_rows.extend(evaluation.as_row() for evaluation in evaluations)
        write_table(self.run_dir / "clients", pd.DataFrame(self.client_rows))

    def on_run_end(self, summary: dict[str, Any]) -> None:
        write_json(self.run_dir / "summary.json", summary)

    def on_run_failed(self, summary: dict[str, Any]) -> None:
        write_json(self.run_dir / "summary.json", summary)
