"""Central evaluation as work for the actor pool: the test set cut into slices of whole
evaluation batches, queued behind the next round's clients, added up on the driver in batch
order.

Why: on a machine whose cores the actors take, evaluating on the driver while the next round
trains makes more threads than cores share them (each slower for the same work), and
evaluating in order leaves the actors idle
while it runs and the driver idle while they train. As slices that whichever actor is free
takes after the round's clients, the evaluation runs on the actors' own threads, in the time
an actor would otherwise wait for the round's last client. Flower has no such notion: its
strategies evaluate centrally in the ServerApp's process (``evaluate_fn``).

Results are the same bits as on the driver: a slice is whole evaluation batches (the same
rows, the same 32-row forward passes, fp32), each batch's summed loss and correct count comes
back as a Python float and int, and the driver adds them in batch order
(:func:`simfl.training.stats_from_batches`). A slice that fails or does not come back is
evaluated on the driver.

This module is the encoding: which rows a slice holds and how its request and reply travel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from simfl.engine.batching import even_batches

#: The Flower message type of a slice: the ClientApp's ``evaluate`` handler named "central".
MESSAGE_TYPE = "evaluate.central"
#: Flower nodes reserved for slices (one slice per node and exchange): enough for every actor
#: of a small machine to take one or two; each costs one more copy of the global model.
MAX_SLICES = 8


@dataclass(frozen=True)
class SideTask:
    """A message for whichever actor is free, sent behind an exchange's clients."""

    message_type: str
    content: RecordDict


def slice_bounds(num_rows: int, batch_size: int, slices: int = MAX_SLICES) -> list[range]:
    """Row ranges of at most ``slices`` slices, each of whole ``batch_size`` batches (the
    last batch may be short), in order."""
    batches = -(-num_rows // batch_size)
    return [
        range(run.start * batch_size, min(num_rows, run.stop * batch_size))
        for run in even_batches(batches, slices)
        if len(run)
    ]


def slice_task(
    arrays: ArrayRecord, rows: np.ndarray, labels: np.ndarray, batch_size: int
) -> SideTask:
    """The request to evaluate ``arrays`` (the global model's shared part) on test-store rows
    ``rows`` with ``labels``, in batches of ``batch_size``."""
    content = RecordDict(
        {
            "arrays": arrays,
            "slice": ArrayRecord(
                {
                    "rows": Array(np.ascontiguousarray(rows, dtype=np.int64)),
                    "labels": Array(np.ascontiguousarray(labels, dtype=np.int64)),
                }
            ),
            "config": ConfigRecord({"batch-size": batch_size}),
        }
    )
    return SideTask(MESSAGE_TYPE, content)


def slice_request(content: RecordDict) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows, labels and batch size of a slice request (on the actor)."""
    piece = content["slice"]
    batch_size = int(content["config"]["batch-size"])  # type: ignore[arg-type]
    return piece["rows"].numpy(), piece["labels"].numpy(), batch_size  # type: ignore[union-attr]


def slice_reply(sums: Sequence[tuple[float, int]], seconds: float) -> RecordDict:
    """Each batch's (summed loss, correct rows), and the slice's compute time."""
    metrics = MetricRecord(
        {
            "loss": [loss for loss, _ in sums],
            "correct": [correct for _, correct in sums],
            "seconds": seconds,
        }
    )
    return RecordDict({"metrics": metrics})


def slice_sums(reply: RecordDict) -> tuple[list[tuple[float, int]], float]:
    """What :func:`slice_reply` packed: the batches' sums and the compute time."""
    metrics = reply["metrics"]
    losses, correct = metrics["loss"], metrics["correct"]
    sums = [(float(loss), int(right)) for loss, right in zip(losses, correct, strict=True)]  # type: ignore[arg-type]
    return sums, float(metrics["seconds"])  # type: ignore[arg-type]
