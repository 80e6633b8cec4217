"""A sweep as one MLflow parent run: its cells' runs nest under it, its report is attached.

The parent run is found again by the sweep's directory (tag ``simfl.run_dir``), so rerunning
the sweep command (resume), another shard of a SLURM array or a second host on the same
results directory all log under one parent; a lock in the sweep directory keeps two shards
from creating it twice. ``mlflow_run.json`` in the sweep directory names the parent run, for
``simfl report``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from simfl.atomic import write_json
from simfl.tracking.mlflow_store import (
    connect,
    experiment_id,
    flat_params,
    log_params,
    run_by_directory,
    source_tags,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from simfl.sweep.grid import Sweep

SWEEP_RUN_FILE = "mlflow_run.json"
SWEEP_ARTIFACTS = ("index.parquet", "index.csv", "sweep.json")


@dataclass
class SweepRun:
    """The MLflow parent run of one sweep directory."""

    client: MlflowClient
    uri: str
    run_id: str

    @classmethod
    def open(cls, uri: str, sweep: Sweep, root: Path) -> SweepRun:
        """The sweep's parent run, created on first use; ``uri`` is reached before anything
        is written (:class:`~simfl.tracking.mlflow_store.TrackingUnreachable` otherwise)."""
        from filelock import FileLock

        client = connect(uri, "tracking.mlflow_uri")
        base = sweep.cells[0].scenario
        experiment = experiment_id(client, base.tracking.mlflow_experiment or base.scenario.name)
        (root / "locks").mkdir(parents=True, exist_ok=True)
        with FileLock(root / "locks" / "mlflow.lock"):
            run_id = run_by_directory(client, experiment, str(root.resolve()))
            if run_id is None:
                run_id = _create(client, experiment, sweep, root)
            else:
                client.update_run(run_id, status="RUNNING")
            write_json(root / SWEEP_RUN_FILE, {"tracking_uri": uri, "run_id": run_id})
        return cls(client, uri, run_id)

    def finish(self, root: Path, status: str | None) -> None:
        """Attach the sweep's index; end the run as ``status`` (None: other shards or a
        rerun still have cells to run, so it stays running). A store that no longer answers
        is said once; the sweep's results are on disk either way."""
        try:
            for name in SWEEP_ARTIFACTS:
                if (root / name).is_file():
                    self.client.log_artifact(self.run_id, str(root / name), artifact_path="sweep")
            if status is not None:
                self.client.set_terminated(self.run_id, status)
        except Exception as error:
            reason = (str(error).splitlines() or [type(error).__name__])[0][:200]
            print(f"MLflow: the sweep's run was not updated ({self.uri}: {reason})",
                  file=sys.stderr)  # fmt: skip


def attach_report(sweep_dir: Path, report_dir: Path) -> str | None:
    """Upload the report's files (HTML, CSV, LaTeX, figures) to the parent run of
    ``sweep_dir`` under ``report/``; the run id, or None if the sweep has no MLflow run."""
    import json

    named = sweep_dir / SWEEP_RUN_FILE
    if not named.is_file():
        return None
    recorded = json.loads(named.read_text())
    client = connect(recorded["tracking_uri"], f"{named}: tracking_uri")
    client.log_artifacts(recorded["run_id"], str(report_dir), artifact_path="report")
    return recorded["run_id"]


def check_report_target(sweep_dir: Path) -> None:
    """Reach the store of ``sweep_dir``'s parent run, if it has one, before a report is built."""
    import json

    named = sweep_dir / SWEEP_RUN_FILE
    if named.is_file():
        connect(json.loads(named.read_text())["tracking_uri"], f"{named}: tracking_uri")


def _create(client: MlflowClient, experiment: str, sweep: Sweep, root: Path) -> str:
    base = sweep.cells[0].scenario
    tags = {
        **source_tags(str(root.resolve())),
        "simfl.sweep_id": sweep.sweep_id,
        "simfl.kind": "sweep",
        "simfl.scenario": base.scenario.name,
    }
    run = client.create_run(experiment, run_name=f"sweep {sweep.sweep_id}", tags=tags)
    axes = {f"sweep.{key}": values for key, values in sweep.axes.items()}
    log_params(client, run.info.run_id, flat_params({"cells": len(sweep.cells), **axes}))
    return run.info.run_id
