"""Server callbacks: components that add metrics after each round, or stop the run.

As in pfl-research (``TrainingProcessCallback.after_central_iteration``), what is measured
about the global model is composed from callbacks passed into the server loop rather than
woven through it: central evaluation is one of them; privacy accounting, a simulated clock or
an update-norm probe are others. A callback sees the round's global model and the record so
far, returns named metrics (they become columns of ``metrics.parquet``, lines of the console
summary and W&B series with no edit elsewhere) and may ask the run to stop after this round.

A callback that only measures the global model may declare ``overlaps_next_round = True``:
the server may then run it while the next round's clients train (``resources.
evaluation_overlap``): on a driver thread where the driver's machine has a core no actor takes,
or, where the actors take every core, as work the actors do behind the clients (a callback's
optional ``remote_work``; central evaluation's slices, simfl.engine.central_slices). A callback
that reads another callback's metrics when it runs (the simulated clock's time-to-target reads
central accuracy) sets ``reads_round_metrics = True``, and then every callback runs in order,
as the round ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from flwr.app import ArrayRecord, RecordDict

    from simfl.engine.central_slices import SideTask
    from simfl.engine.plan import RunPlan
    from simfl.engine.records import RoundRecord
    from simfl.training import LoopStats


@dataclass(frozen=True)
class RoundState:
    """What a callback may look at after round ``server_round`` (0: the initial model)."""

    server_round: int
    arrays: ArrayRecord  # the global (shared) model after this round
    previous: ArrayRecord | None  # the global model before it; None at round 0
    record: RoundRecord  # core figures and the metrics added so far


@dataclass(frozen=True)
class CallbackResult:
    """Metrics to add to the round, and a reason to stop the run after it (None: go on)."""

    metrics: dict[str, float] = field(default_factory=dict)
    stop: str | None = None


class ServerCallback:
    """Something that runs after every round; see the module docstring.

    Subclasses implement :meth:`after_round` and declare what the server may do with it:
    ``overlaps_next_round`` (it only measures the global model, so it may run while the next
    round trains, and may hand that work to the actors through :meth:`remote_work`) and
    ``reads_round_metrics`` (it reads other callbacks' metrics of the round when it runs).
    """

    overlaps_next_round: bool = False
    reads_round_metrics: bool = False

    def after_round(self, state: RoundState) -> CallbackResult | None:
        raise NotImplementedError

    def remote_work(self, state: RoundState) -> RemoteWork | None:
        """Work for the actor pool that stands in for :meth:`after_round` (None: none)."""
        return None


def can_overlap(callbacks: list[ServerCallback]) -> bool:
    """Whether the callbacks that may overlap the next round can: they all come first (their
    metrics lead each row, as when they run in order) and no callback reads the round's
    metrics when it runs."""
    overlaps = [callback.overlaps_next_round for callback in callbacks]
    first_other = overlaps.index(False) if False in overlaps else len(overlaps)
    return (
        any(overlaps)
        and not any(overlaps[first_other:])
        and not any(callback.reads_round_metrics for callback in callbacks)
    )


class CentralEvaluation(ServerCallback):
    """The global model on the held-out test speakers, loaded into memory once.

    With partial sharing or frozen parameters the global model is the shared part only; it is
    completed with the initial local and frozen parts, the ones an unseen client starts from.
    Reports central loss and accuracy (plus WER and CER for transcription) and its own time.
    It only measures, so it may run while the next round trains (``overlaps_next_round``).
    """

    overlaps_next_round = True

    def __init__(self, plan: RunPlan, test_rows: np.ndarray, test_labels: np.ndarray) -> None:
        from simfl.data.feature_store import FeatureStore
        from simfl.training import cpu_state, pick_device

        initial = plan.initial_model()
        self.base = cpu_state(initial)
        self.model = initial.to(pick_device(plan.scenario.resources.num_gpus))
        self.rows = np.asarray(test_rows, dtype=np.int64)
        self.features = torch.from_numpy(FeatureStore.open(plan.test_store).read(self.rows))
        self.labels = torch.from_numpy(np.asarray(test_labels, dtype=np.int64))
        self.batch_size = plan.scenario.train.eval_batch_size
        self.task = plan.task()

    def load(self, arrays: ArrayRecord) -> None:
        self.model.load_state_dict({**self.base, **arrays.to_torch_state_dict()}, strict=True)

    def evaluate(self, arrays: ArrayRecord) -> LoopStats:
        from simfl.training import evaluate

        self.load(arrays)
        return evaluate(self.model, self.features, self.labels, self.batch_size, self.task)

    def after_round(self, state: RoundState) -> CallbackResult:
        start = time.perf_counter()
        stats = self.evaluate(state.arrays)
        return self.result(stats, time.perf_counter() - start)

    @staticmethod
    def result(stats: LoopStats, seconds: float) -> CallbackResult:
        metrics = {"central_loss": stats.loss, "central_accuracy": stats.accuracy}
        metrics |= {f"central_{name}": value for name, value in stats.extra.items()}
        metrics["central_eval_seconds"] = seconds
        return CallbackResult(metrics)

    def remote_work(self, state: RoundState) -> RemoteWork | None:
        """The evaluation as slices for the actor pool (simfl.engine.central_slices), or None
        where it cannot be cut into batches added up afterwards (a task such as transcription
        scores whole sets) or runs on a GPU here (the actors' CPUs would give other bits)."""
        from simfl.engine.central_slices import slice_bounds, slice_task

        on_cpu = next(self.model.parameters()).device.type == "cpu"
        if self.task is not None or not on_cpu or not len(self.rows):
            return None
        bounds = slice_bounds(len(self.rows), self.batch_size)
        labels = self.labels.numpy()
        tasks = [
            slice_task(
                state.arrays, self.rows[b.start : b.stop], labels[b.start : b.stop], self.batch_size
            )
            for b in bounds
        ]
        return RemoteWork(tasks, lambda replies: self.from_slices(state, bounds, replies))

    def from_slices(
        self, state: RoundState, bounds: list[range], replies: list[RecordDict | None]
    ) -> CallbackResult:
        """The slices' batch sums added up in batch order, as :meth:`evaluate` adds them; a
        slice without a reply (its actor failed, or the exchange timed out) is evaluated
        here. Seconds: the slices' compute time, summed."""
        from simfl.engine.central_slices import slice_sums
        from simfl.training import batch_sums, stats_from_batches

        if any(reply is None for reply in replies):
            self.load(state.arrays)  # once, for every slice evaluated here
        sums: list[tuple[float, int]] = []
        seconds = 0.0
        for rows, reply in zip(bounds, replies, strict=True):
            if reply is not None:
                piece, spent = slice_sums(reply)
            else:
                start = time.perf_counter()
                part = slice(rows.start, rows.stop)
                piece = batch_sums(
                    self.model, self.features[part], self.labels[part], self.batch_size
                )
                spent = time.perf_counter() - start
            sums += piece
            seconds += spent
        return self.result(stats_from_batches(sums, len(self.rows)), seconds)


@dataclass(frozen=True)
class RemoteWork:
    """What a deferred callback hands the actor pool (``tasks``, simfl.engine.central_slices),
    and how it turns their replies (None: that task failed) into its result."""

    tasks: list[SideTask]
    finish: Callable[[list[RecordDict | None]], CallbackResult]
