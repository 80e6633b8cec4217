"""One W&B run per simfl run: config = resolved scenario, metrics per round, the summary.

Offline by default (``WANDB_MODE=offline`` semantics), so no network and no API key are needed;
``online`` uses whatever credentials W&B itself finds. simfl never reads, prints or stores a key.
"""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simfl.atomic import write_text
from simfl.engine.records import RoundRecord
from simfl.tracking.callbacks import RunInfo, Tracker
from simfl.tracking.flat import leaves

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.run import RunOptions

#: W&B tables are for looking at; a population of 10^5 clients stays in partition.parquet.
#: Capped in cells, not rows: building and logging a W&B table costs time per cell, and the
#: 35-word partition table has 46 columns, so a row cap would still cost seconds of start-up.
MAX_TABLE_CELLS = 50_000

RUN_ID_FILE = "wandb_run_id"


def evenly_spaced_rows(table: pd.DataFrame, max_cells: int) -> pd.DataFrame:
    """All of ``table`` if it has at most ``max_cells`` cells; else as many rows as fit, evenly
    spaced over it (first and last included), so the sample spans the whole population."""
    rows = max(1, max_cells // max(1, len(table.columns)))
    if len(table) <= rows:
        return table
    return table.iloc[np.linspace(0, len(table) - 1, rows).round().astype(int)]


class WandbLogger(Tracker):
    """Logs to one W&B run per simfl run; a resumed run continues the same W&B run.

    The W&B run id is kept in the run directory (``wandb_run_id``), so ``simfl run --resume``
    and a sweep resuming a cell log under the same id (offline: ``wandb sync`` merges the
    pieces). A run that cannot start (``online`` without a login) raises before any W&B run
    exists, so none is left "running"; a failed run is finished with exit code 1.
    """

    def __init__(self, mode: str, group: str | None = None) -> None:
        self.mode = mode
        self.group = group
        self.run: Any = None
        self.label = f"W&B ({mode})"

    @classmethod
    def for_run(cls, scenario: Scenario, options: RunOptions) -> WandbLogger | None:
        mode = options.wandb_mode or scenario.tracking.wandb_mode
        return None if mode == "disabled" else cls(mode, group=options.wandb_group)

    def on_run_start(self, info: RunInfo) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        tracking = info.scenario.tracking
        id_file = info.run_dir / RUN_ID_FILE
        if info.resumed_after is not None and id_file.is_file():
            run_id = id_file.read_text().strip()
        else:
            run_id = secrets.token_hex(6)  # W&B ids: lowercase letters and digits
            write_text(id_file, run_id + "\n")
        self.run = wandb.init(
            id=run_id,
            resume="allow",
            project=tracking.wandb_project,
            entity=tracking.wandb_entity or None,
            group=self.group or tracking.wandb_group or info.scenario.scenario.name,
            name=info.run_name,
            dir=str(info.run_dir),
            mode=self.mode,
            config=info.scenario.model_dump(mode="json"),
            tags=[info.scenario.strategy.name, info.scenario.partition.kind],
        )
        if info.resumed_after is not None:
            return  # the partition was logged when the run started
        self.run.summary.update({f"partition/{k}": v for k, v in info.partition_scores.items()})
        clients = evenly_spaced_rows(info.partition_clients, MAX_TABLE_CELLS)
        logged = {"partition/clients": wandb.Table(dataframe=clients)}
        figure = info.run_dir / "partition.png"  # drawn by ResultsWriter, which runs first
        if figure.is_file():
            logged["partition/figure"] = wandb.Image(str(figure))
        self.run.log(logged, step=0)

    def on_round_end(self, record: RoundRecord) -> None:
        row = {k: v for k, v in record.as_row().items() if not _is_nan(v)}
        self.run.log(row, step=record.round)

    def on_run_end(self, summary: dict[str, Any]) -> None:
        self._finish(summary, exit_code=0)

    def on_run_failed(self, summary: dict[str, Any]) -> None:
        """Finished, never left running: with the signal's exit code when interrupted."""
        if self.run is not None:
            self._finish(summary, exit_code=summary.get("exit_code", 1))

    def _finish(self, summary: dict[str, Any], exit_code: int) -> None:
        flat = {k: v for k, v in leaves(summary, "/") if isinstance(v, int | float | str | bool)}
        self.run.summary.update({k: v for k, v in flat.items() if not _is_nan(v)})
        self.run.finish(exit_code=exit_code)
        self.run = None


def log_table(
    frame: pd.DataFrame,
    name: str,
    group: str,
    mode: str,
    directory: Path,
    project: str = "simfl",
    entity: str | None = None,
) -> None:
    """One summary W&B run in ``group`` holding ``frame`` as a table (sweep index, report)."""
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    run = wandb.init(
        project=project,
        entity=entity or None,
        group=group,
        name=f"{group}-{name}",
        job_type="summary",
        dir=str(directory),
        mode=mode,
    )
    run.log({name: wandb.Table(dataframe=frame.astype(str))})
    run.finish()


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
