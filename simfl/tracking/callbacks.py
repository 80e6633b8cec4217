"""Recorder callbacks: the engine reports events, callbacks decide where they go.

As in pfl-research, tracking is composed from callbacks passed into the run rather than woven
through the training loop: the engine knows nothing about files, consoles or W&B.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simfl.engine.records import ClientEvaluation, ClientFailure, ClientUpdate, RoundRecord
from simfl.errors import RecorderError, SimflError

if TYPE_CHECKING:
    import pandas as pd

    from simfl.config import Scenario
    from simfl.run import RunOptions


@dataclass(frozen=True)
class RunInfo:
    """What is known when a run starts: the scenario, its name and directory, the split."""

    scenario: Scenario
    run_name: str
    run_dir: Path
    started_at: str
    partition_clients: pd.DataFrame
    partition_scores: dict[str, float]
    label_names: list[str]
    partition_figure: Path | None = None  # drawn once per partition (simfl/federation.py)
    resumed_after: int | None = None  # the checkpoint's round when a run resumes, else None

    def header(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.scenario.name,
            "run_name": self.run_name,
            "scenario_hash": self.scenario.full_hash(),
            "seed": self.scenario.scenario.seed,
            "started_at": self.started_at,
        }


class RunCallback:
    """Override what you need; every hook is a no-op by default."""

    def on_run_start(self, info: RunInfo) -> None: ...

    def on_round_end(self, record: RoundRecord) -> None: ...

    def on_client_failures(self, failures: list[ClientFailure]) -> None: ...

    def on_stop(self, server_round: int, reason: str) -> None:
        """A server callback ended the run early after ``server_round`` (e.g. a budget)."""

    def on_client_evaluations(self, evaluations: list[ClientEvaluation]) -> None: ...

    def on_client_updates(self, updates: list[ClientUpdate]) -> None: ...

    def on_run_end(self, summary: dict[str, Any]) -> None: ...

    def on_run_failed(self, summary: dict[str, Any]) -> None: ...


class Tracker(RunCallback):
    """A sink of a run's records besides its results directory (W&B, MLflow), named in
    :data:`simfl.plugins.TRACKERS`; the run builds the ones its options and scenario turn on.

    :meth:`check` runs before anything is written (data, results directory): a backend that
    cannot be reached is refused there, in one line, with nothing on disk.
    """

    label = "tracker"

    @classmethod
    def for_run(cls, scenario: Scenario, options: RunOptions) -> Tracker | None:
        """The tracker this run uses, or None where the scenario and options leave it off."""
        raise NotImplementedError

    def check(self) -> None:
        """Reach the backend (raise a :class:`~simfl.errors.SimflError` if it cannot be)."""


@dataclass
class CallbackList(RunCallback):
    """Fans each event out to every callback, in order.

    What ours adds: a callback that cannot start (W&B without a login, an unwritable results
    directory) or cannot write (an I/O error) raises :class:`RecorderError`, one line naming
    the callback, so the run is marked failed and the user reads what to fix (a full disk is
    already one line, :class:`~simfl.errors.ResultsWriteError`, naming the file); and
    ``on_run_failed`` reaches every callback even if one of them cannot record the failure.
    """

    callbacks: list[RunCallback] = field(default_factory=list)

    def on_run_start(self, info: RunInfo) -> None:
        for callback in self.callbacks:
            with _as_recorder_error(callback, "could not start"):
                callback.on_run_start(info)

    def on_round_end(self, record: RoundRecord) -> None:
        for callback in self.callbacks:
            with _as_recorder_error(callback, "could not record the round", OSError):
                callback.on_round_end(record)

    def on_client_failures(self, failures: list[ClientFailure]) -> None:
        for callback in self.callbacks:
            callback.on_client_failures(failures)

    def on_stop(self, server_round: int, reason: str) -> None:
        for callback in self.callbacks:
            callback.on_stop(server_round, reason)

    def on_client_evaluations(self, evaluations: list[ClientEvaluation]) -> None:
        for callback in self.callbacks:
            callback.on_client_evaluations(evaluations)

    def on_client_updates(self, updates: list[ClientUpdate]) -> None:
        for callback in self.callbacks:
            callback.on_client_updates(updates)

    def on_run_end(self, summary: dict[str, Any]) -> None:
        for callback in self.callbacks:
            callback.on_run_end(summary)

    def on_run_failed(self, summary: dict[str, Any]) -> None:
        for callback in self.callbacks:  # best effort: the run's own error is what matters
            with contextlib.suppress(Exception):
                callback.on_run_failed(summary)


@contextlib.contextmanager
def _as_recorder_error(
    callback: RunCallback, doing: str, kinds: type[BaseException] | tuple = Exception
) -> Iterator[None]:
    try:
        yield
    except SimflError:
        raise
    except kinds as error:
        name = getattr(callback, "label", type(callback).__name__)
        raise RecorderError(f"{name} {doing}", error) from error


@dataclass
class History(RunCallback):
    """Keeps every round and failure in memory, for the summary at the end of a run."""

    rounds: list[RoundRecord] = field(default_factory=list)
    failures: list[ClientFailure] = field(default_factory=list)
    stop_reason: str | None = None
    round_zero_at: float | None = None  # perf_counter() when round 0 was recorded

    def on_round_end(self, record: RoundRecord) -> None:
        if record.round == 0:
            self.round_zero_at = time.perf_counter()
        self.rounds.append(record)

    def on_stop(self, server_round: int, reason: str) -> None:
        self.stop_reason = f"stopped after round {server_round}: {reason}"

    def on_client_failures(self, failures: list[ClientFailure]) -> None:
        self.failures.extend(failures)
