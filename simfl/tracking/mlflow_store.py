"""What simfl asks of an MLflow store: a client that answered, experiments, params and files.

MLflow's :class:`~mlflow.MlflowClient` does the talking. What ours adds: a store that does not
answer is one line naming the URI (exit 2) before anything is written, instead of minutes of
retries and a traceback; a resolved scenario becomes MLflow params with dotted keys, in
batches MLflow accepts; and a run directory's files become the run's artifacts.

MLflow is imported only when a run tracks to it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simfl.errors import SimflError
from simfl.tracking.flat import leaves

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: MLflow's own client settings, unless the user set them: a server that went away costs
#: seconds, not the default minutes of retries, before simfl stops tracking and trains on; and
#: no run link printed into the live display at each run's end.
HTTP_DEFAULTS = {
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}

#: The run directory's files an MLflow run carries as artifacts, where the run wrote them.
RUN_ARTIFACTS = (
    "scenario.toml",
    "summary.json",
    "metrics.parquet",
    "metrics.csv",
    "partition.png",
    "partition_summary.json",
    "clients.parquet",
    "client_updates.parquet",
    "failures.json",
)

#: MLflow's limits: params per batch and characters per param value.
PARAMS_PER_BATCH = 100
MAX_PARAM_CHARS = 6000


class TrackingUnreachable(SimflError):
    """The tracking store did not answer when the run or sweep started. Exit code 2: nothing
    was written, and the user fixes the URI or starts the server before rerunning."""

    exit_code = 2


def connect(uri: str, flag: str) -> MlflowClient:
    """A client of ``uri`` that has answered one request, or :class:`TrackingUnreachable`
    naming ``flag`` (the key or option that gave the URI)."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TrackingUnreachable(
            f"{flag} {uri}: the MLflow tracking store did not answer ({reason[:200]}); start "
            "it or fix the URI"
        ) from None
    return client


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created if it does not exist (by this or another
    process: two sweep shards may race to create it)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def flat_params(data: dict[str, Any]) -> dict[str, str]:
    """Nested settings as MLflow params: dotted keys, values as their TOML/JSON spelling."""
    params: dict[str, str] = {}
    for name, value in leaves(data, "."):
        text = value if isinstance(value, str) else json.dumps(value)
        fits = len(text) <= MAX_PARAM_CHARS
        params[name] = text if fits else text[: MAX_PARAM_CHARS - 1] + "…"
    return params


def run_by_directory(client: MlflowClient, experiment: str, directory: str) -> str | None:
    """The MLflow run that logs ``directory`` (tag ``simfl.run_dir``: a run or a sweep
    directory), if one exists: a resumed or restarted run continues it."""
    quoted = directory.replace("\\", "\\\\").replace("'", "\\'")
    runs = client.search_runs(
        [experiment], filter_string=f"tags.`simfl.run_dir` = '{quoted}'", max_results=1
    )
    return runs[0].info.run_id if runs else None


def source_tags(directory: str) -> dict[str, str]:
    """The tags every simfl MLflow run carries: its directory and the checkout's commit."""
    from simfl.tracking.summary import git_commit

    commit = git_commit()
    return {
        "simfl.run_dir": directory,
        "simfl.git_commit": commit,
        "mlflow.source.git.commit": commit.removesuffix("+dirty"),
    }


def log_params(client: MlflowClient, run_id: str, params: dict[str, str]) -> None:
    """All of ``params``, in batches of MLflow's size (a value logged again must be equal)."""
    from mlflow.entities import Param

    items = [Param(key, value) for key, value in params.items()]
    for batch in _chunks(items, PARAMS_PER_BATCH):
        client.log_batch(run_id, params=batch, synchronous=True)


def log_files(
    client: MlflowClient, run_id: str, directory: Path, names: Iterable[str], under: str | None
) -> list[str]:
    """Upload the files of ``directory`` named in ``names`` that exist; their names."""
    sent = []
    for name in names:
        path = directory / name
        if path.is_file():
            client.log_artifact(run_id, str(path), artifact_path=under)
            sent.append(name)
    return sent


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
