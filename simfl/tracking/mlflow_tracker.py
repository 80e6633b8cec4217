"""One MLflow run per simfl run: the scenario as params, every round as step metrics, files.

A sink of the run's records like W&B (:mod:`simfl.tracking.wandb_logger`): the round loop
knows nothing of it. What ours adds to MLflow's client:

- the run is found again by its run directory (tag ``simfl.run_dir``), so ``--resume``, a
  resumed sweep cell and a cell restarted from round 0 continue the same MLflow run, and a
  round logged before an interruption is not logged a second time (each step once);
- the run ends ``FINISHED``, ``FAILED`` or ``KILLED`` (interrupted), never left ``RUNNING``
  (a kill -9 leaves it running until ``--resume`` continues it);
- a store that stops answering mid-run stops the tracking, said once on stderr; training goes
  on and the results directory is complete either way.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simfl.engine.records import RoundRecord
from simfl.tracking.callbacks import RunInfo, Tracker
from simfl.tracking.flat import leaves
from simfl.tracking.mlflow_store import (
    RUN_ARTIFACTS,
    connect,
    experiment_id,
    flat_params,
    log_files,
    log_params,
    run_by_directory,
    source_tags,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from simfl.config import Scenario
    from simfl.run import RunOptions

#: The metric every round has: its logged steps say which rounds a resumed run already has.
STEP_KEY = "round_seconds"
METRICS_PER_BATCH = 1000


class MlflowTracker(Tracker):
    """Logs one simfl run to one MLflow run (a nested child of ``parent_run`` in a sweep)."""

    label = "MLflow"

    def __init__(self, uri: str, experiment: str, parent_run: str | None = None) -> None:
        self.uri, self.experiment, self.parent_run = uri, experiment, parent_run
        self.client: MlflowClient | None = None
        self.run_id: str | None = None
        self.run_dir: Path | None = None
        self.logged_steps: set[int] = set()
        self.stopped: str | None = None

    @classmethod
    def for_run(cls, scenario: Scenario, options: RunOptions) -> MlflowTracker | None:
        uri = scenario.tracking.mlflow_uri
        if not uri:
            return None
        experiment = scenario.tracking.mlflow_experiment or scenario.scenario.name
        return cls(uri, experiment, options.mlflow_parent_run)

    def check(self) -> None:
        self.client = connect(self.uri, "tracking.mlflow_uri")

    def on_run_start(self, info: RunInfo) -> None:
        client = self.client or connect(self.uri, "tracking.mlflow_uri")
        self.client = client
        self.run_dir = info.run_dir.resolve()
        experiment = experiment_id(client, self.experiment)
        self.run_id = run_by_directory(client, experiment, str(self.run_dir))
        if self.run_id is None:
            tags = _tags(info, str(self.run_dir))
            if self.parent_run:
                tags["mlflow.parentRunId"] = self.parent_run
            run = client.create_run(experiment, run_name=info.run_name, tags=tags)
            self.run_id = run.info.run_id
        else:
            client.update_run(self.run_id, status="RUNNING")
            history = client.get_metric_history(self.run_id, STEP_KEY)
            self.logged_steps = {metric.step for metric in history}
        log_params(client, self.run_id, flat_params(info.scenario.model_dump(mode="json")))

    def on_round_end(self, record: RoundRecord) -> None:
        if self._off() or record.round in self.logged_steps:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, record.round)
            for key, value in record.as_row().items()
            if key != "round" and not _is_nan(value)
        ]
        with self._guard(f"round {record.round}"):
            for start in range(0, len(metrics), METRICS_PER_BATCH):
                batch = metrics[start : start + METRICS_PER_BATCH]
                self._client.log_batch(self._run, metrics=batch, synchronous=True)
            self.logged_steps.add(record.round)

    def on_run_end(self, summary: dict[str, Any]) -> None:
        self._finish(summary, "FINISHED")

    def on_run_failed(self, summary: dict[str, Any]) -> None:
        if self.run_id is not None:
            self._finish(summary, "KILLED" if summary["status"] == "interrupted" else "FAILED")

    def _finish(self, summary: dict[str, Any], status: str) -> None:
        if self._off():
            return
        from mlflow.entities import Metric

        step = max(self.logged_steps, default=0)
        now = int(time.time() * 1000)
        figures = [Metric(f"summary/{k}", v, now, step) for k, v in _numbers(summary).items()]
        with self._guard("the end of the run"):
            self._client.log_batch(self._run, metrics=figures, synchronous=True)
            self._client.set_tag(self._run, "simfl.status", summary["status"])
            log_files(self._client, self._run, self.run_dir or Path(), RUN_ARTIFACTS, under=None)
            self._client.set_terminated(self._run, status)

    def _off(self) -> bool:
        return self.stopped is not None or self.run_id is None

    @property
    def _client(self) -> MlflowClient:
        assert self.client is not None, "on_run_start connects"
        return self.client

    @property
    def _run(self) -> str:
        assert self.run_id is not None, "on_run_start opens the run"
        return self.run_id

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Stop tracking at the store's first error and say so once; the run goes on."""
        try:
            yield
        except Exception as error:
            reason = (str(error).splitlines() or [type(error).__name__])[0][:200]
            self.stopped = f"{doing}: {reason}"
            print(
                f"MLflow tracking stopped at {doing} ({self.uri}: {reason}); the run goes on "
                "and its results directory stays complete",
                file=sys.stderr,
                flush=True,
            )


def _tags(info: RunInfo, run_dir: str) -> dict[str, str]:
    scenario = info.scenario
    return {
        **source_tags(run_dir),
        "simfl.scenario": scenario.scenario.name,
        "simfl.scenario_hash": scenario.full_hash(),
        "simfl.strategy": scenario.strategy.name,
        "simfl.partition": scenario.partition.kind,
        "simfl.seed": str(scenario.scenario.seed),
    }


def _numbers(data: dict[str, Any]) -> dict[str, float]:
    """The summary's numeric figures, flat (``final/central_accuracy``); no text, no NaN."""
    return {
        name: float(value)
        for name, value in leaves(data, "/")
        if isinstance(value, int | float) and not isinstance(value, bool) and not _is_nan(value)
    }


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
