"""The results directory of one run: scenario, metrics per round, partition, summary.

Every file is written atomically and durably (metrics are appended durably, one line a round),
so an interrupted run leaves complete files and a ``summary.json`` whose ``status`` says
``running`` or ``failed``, never ``completed``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from simfl.atomic import (
    append_line,
    read_complete_lines,
    write_atomically,
    write_json,
    write_table,
    write_text,
)
from simfl.config import Scenario
from simfl.engine.records import ClientEvaluation, ClientFailure, ClientUpdate, RoundRecord
from simfl.errors import ResultsWriteError
from simfl.tracking.callbacks import History, RunCallback, RunInfo

METRICS_LINES = "metrics.jsonl"
#: Per-client training rows, one line per round: ``{"rows": [...]}``.
UPDATES_LINES = "client_updates.jsonl"


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
    """Writes the run directory.

    Metrics are appended, one JSON line per round, to ``metrics.jsonl`` (written with
    ``O_APPEND`` and fsynced: nothing written before is rewritten, and a crash can only tear
    the last line, which readers drop). JSON lines rather than CSV because rounds differ in
    columns (round 0 has no training metrics; a server callback may add some later). The
    tables ``metrics.parquet`` and ``metrics.csv`` are built from it, atomically, when the run
    ends (completed or failed), before ``summary.json`` says so.

    ``previous`` is the history of a resumed run up to its checkpoint: the metrics file is
    rewritten once to exactly those rounds (a round after the checkpoint is run again).
    """

    label = "results directory"

    def __init__(self, run_dir: Path, previous: History | None = None) -> None:
        self.run_dir = run_dir
        self.rounds: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.client_rows: list[dict[str, Any]] = []
        self.update_rows: list[dict[str, Any]] = []
        if previous is not None:
            self.rounds = [record.as_row() for record in previous.rounds]
            self.failures = [asdict(failure) for failure in previous.failures]
        self.resuming = previous is not None

    @property
    def metrics_lines(self) -> Path:
        return self.run_dir / METRICS_LINES

    @property
    def updates_lines(self) -> Path:
        return self.run_dir / UPDATES_LINES

    def on_run_start(self, info: RunInfo) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=self.resuming)
        write_text(self.run_dir / "scenario.toml", info.scenario.to_toml())
        write_table(self.run_dir / "partition", info.partition_clients)
        write_json(self.run_dir / "partition_summary.json", info.partition_scores)
        figure = info.partition_figure
        write_atomically(
            self.run_dir / "partition.png",
            (lambda tmp: shutil.copyfile(figure, tmp))
            if figure is not None and figure.is_file()
            else (lambda tmp: _plot_partition(info, tmp)),
        )
        if self.resuming:
            text = "".join(_json_line(row) + "\n" for row in self.rounds)
            write_text(self.metrics_lines, text)
            write_json(self.run_dir / "failures.json", self.failures)
            last = int(self.rounds[-1]["round"]) if self.rounds else 0
            self.client_rows = client_rows_until(self.run_dir / "clients.parquet", last)
            self.update_rows = update_rows_until(self.updates_lines, last)
            kept = _json_line({"rows": self.update_rows}) + "\n" if self.update_rows else ""
            write_text(self.updates_lines, kept)  # a line may hold several rounds' rows
        write_json(self.run_dir / "summary.json", {"status": "running", **info.header()})

    def on_round_end(self, record: RoundRecord) -> None:
        row = record.as_row()
        append_line(self.metrics_lines, _json_line(row))
        self.rounds.append(row)

    def on_client_failures(self, failures: list[ClientFailure]) -> None:
        self.failures.extend(asdict(failure) for failure in failures)
        write_json(self.run_dir / "failures.json", self.failures)

    def on_client_evaluations(self, evaluations: list[ClientEvaluation]) -> None:
        self.client_rows.extend(evaluation.as_row() for evaluation in evaluations)
        write_table(self.run_dir / "clients", pd.DataFrame(self.client_rows))

    def on_client_updates(self, updates: list[ClientUpdate]) -> None:
        """One fsynced line per round holding its clients' rows (the table is written when the
        run ends, as metrics.parquet is: no table rewritten every round)."""
        rows = [update.as_row() for update in updates]
        self.update_rows.extend(rows)
        append_line(self.updates_lines, _json_line({"rows": rows}))

    def on_run_end(self, summary: dict[str, Any]) -> None:
        self._write_tables()
        write_json(self.run_dir / "summary.json", summary)

    def on_run_failed(self, summary: dict[str, Any]) -> None:
        """Mark the run failed; on a full disk the small summary may fit where the tables did
        not (metrics.jsonl holds every round anyway), and neither is ever left half-written."""
        if not (self.run_dir / "summary.json").exists():
            return  # the directory could not even be started: nothing to mark
        with contextlib.suppress(ResultsWriteError):
            self._write_tables()
        write_json(self.run_dir / "summary.json", summary)

    def _write_tables(self) -> None:
        if self.rounds:
            write_table(self.run_dir / "metrics", pd.DataFrame(self.rounds))
        if self.update_rows:
            write_table(self.run_dir / "client_updates", pd.DataFrame(self.update_rows))


def _plot_partition(info: RunInfo, path: Path) -> None:
    """Draw the partition figure (matplotlib is imported only when no cached figure exists)."""
    from partitioners.plots import plot_partition

    plot_partition(info.partition_clients, info.partition_scores, path)


def client_rows_until(path: Path, last_round: int) -> list[dict[str, Any]]:
    """The per-client rows (evaluations, updates) of a resumed run's rounds up to its
    checkpoint (later rounds run again), from the table the interrupted attempt wrote; none
    if it wrote none."""
    if not path.is_file():
        return []
    frame = pd.read_parquet(path)
    return frame[frame["round"] <= last_round].to_dict("records")


def update_rows_until(path: Path, last_round: int) -> list[dict[str, Any]]:
    """The client-update rows of a resumed run's rounds up to its checkpoint, from the lines
    the interrupted attempt appended (a torn last line is left out)."""
    if not path.is_file():
        return []
    rows = [row for line in read_complete_lines(path) for row in json.loads(line)["rows"]]
    return [row for row in rows if row["round"] <= last_round]


def _json_line(row: dict[str, Any]) -> str:
    """One round as JSON; floats round-trip exactly (``repr``), NaN as ``NaN``."""
    return json.dumps(row, allow_nan=True, separators=(",", ":"))
