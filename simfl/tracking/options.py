"""The command-line options that choose trackers, shared by ``run``, ``sweep`` and ``claims``."""

from __future__ import annotations

from typing import Annotated

import typer

from simfl.errors import ScenarioError

WANDB_MODES = ("offline", "online", "disabled")

WandbOption = Annotated[
    str | None, typer.Option("--wandb", help="W&B mode: offline, online or disabled.")
]
#: ``--mlflow`` of the commands that run many cells (sweep, claims).
NestedMlflowOption = Annotated[
    str | None,
    typer.Option(
        "--mlflow",
        help="Also log to MLflow (a parent run, a nested run per cell): http(s)://HOST:PORT, "
        "sqlite:///FILE or a local path (default: the scenario's tracking.mlflow_uri).",
        show_default=False,
    ),
]


def wandb_flag(mode: str | None) -> str | None:
    """``--wandb`` checked (one line, exit 2)."""
    if mode not in (None, *WANDB_MODES):
        raise ScenarioError(f"--wandb {mode!r}: allowed: {', '.join(WANDB_MODES)}")
    return mode


def mlflow_flag(uri: str | None) -> str | None:
    """``--mlflow URI`` checked like ``tracking.mlflow_uri`` (one line, exit 2)."""
    from simfl.schema.sections import check_mlflow_uri

    if uri is None:
        return None
    try:
        return check_mlflow_uri(uri) or None
    except ValueError as error:
        raise ScenarioError(f"--mlflow: {error}") from None
