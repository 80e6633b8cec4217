"""What the engine reports each round: a typed core plus metrics any component may add.

Why a mapping: evaluation, privacy accounting, a simulated clock... each contributes its own
figures. The core holds what every round has (counts, bytes, timings); ``metrics`` holds the
rest by name. Every sink (results files, console, W&B, report) reads :meth:`RoundRecord.as_row`,
so a new metric needs no edit anywhere but in the component that computes it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flwr.app import Message

NAN = math.nan
TIMING_COLUMNS = ("round_seconds", "train_seconds", "evaluate_seconds", "central_eval_seconds")


@dataclass
class RoundRecord:
    """One row of ``metrics.parquet``. Round 0 holds the evaluation of the initial model."""

    round: int
    clients_sampled: int = 0
    clients_succeeded: int = 0
    clients_failed: int = 0
    eval_clients_sampled: int = 0
    eval_clients_succeeded: int = 0
    eval_clients_failed: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    round_seconds: float = 0.0
    train_seconds: float = 0.0
    evaluate_seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)

    def add(self, metrics: dict[str, float], source: str = "") -> None:
        """Add named metrics; a name already present is a programming error, not an update."""
        clash = sorted(set(metrics) & (set(self.metrics) | set(CORE_FIELDS)))
        if clash:
            raise ValueError(f"{source or 'a component'} reports {clash} a second time")
        self.metrics.update({name: float(value) for name, value in metrics.items()})

    def get(self, name: str, default: float = NAN) -> float:
        """A metric (or core figure) by name; NaN when this round does not have it."""
        if name in CORE_FIELDS:
            return getattr(self, name)
        return self.metrics.get(name, default)

    @classmethod
    def from_row(cls, row: dict[str, float | int]) -> RoundRecord:
        """The record :meth:`as_row` flattened (a checkpoint's history, a metrics file)."""
        core = {name: row[name] for name in CORE_FIELDS if name in row}
        metrics = {name: float(value) for name, value in row.items() if name not in CORE_FIELDS}
        return cls(**core, metrics=metrics)

    def as_row(self) -> dict[str, float | int]:
        """Core figures then metrics, flat: one row of the results table."""
        row: dict[str, float | int] = {name: getattr(self, name) for name in CORE_FIELDS}
        row.update(self.metrics)
        return row


CORE_FIELDS = tuple(f.name for f in fields(RoundRecord) if f.name != "metrics")


@dataclass(frozen=True)
class ClientFailure:
    """A reply that carried an error instead of a result, with the client's traceback; or,
    of ``kind`` "infrastructure", a client actor that died and was replaced (its message was
    run again, so the client itself did not fail)."""

    round: int
    phase: str
    partition_id: int
    node_id: int
    reason: str
    kind: str = "client"


@dataclass(frozen=True)
class ClientEvaluation:
    """One client's federated-evaluation reply in one round: every metric it sent back.

    Kept per client (``clients.parquet``) so reports can show how accuracy is spread over clients
    (fairness), which the round's mean / std / worst-10% summarise but do not show.
    """

    round: int
    partition_id: int
    metrics: dict[str, float]

    def as_row(self) -> dict[str, float | int]:
        return {"round": self.round, "partition_id": self.partition_id, **self.metrics}


@dataclass(frozen=True)
class ClientUpdate:
    """One client's training reply in one round: the metrics it sent with its update
    (``num-examples``, ``train_loss``, and what a strategy asks for, e.g. FedNova's
    ``local_steps``). Kept per client (``client_updates.parquet``): partial work and
    heterogeneous local work show there, client by client."""

    round: int
    partition_id: int
    metrics: dict[str, float]

    def as_row(self) -> dict[str, float | int]:
        return {"round": self.round, "partition_id": self.partition_id, **self.metrics}


def client_updates(
    server_round: int, replies: Iterable[Message], order: dict[int, int]
) -> list[ClientUpdate]:
    """Each training reply's metrics, keyed by the partition its node served (``order``)."""
    return [
        ClientUpdate(
            server_round,
            order.get(reply.metadata.src_node_id, -1),
            {key: float(value) for key, value in reply.content["metrics"].items()},  # type: ignore[arg-type]
        )
        for reply in replies
    ]


def message_bytes(messages: Iterable[Message]) -> int:
    """Bytes of array payload in these messages (what dominates the wire)."""
    total = 0
    for message in messages:
        if message.has_error():
            continue
        for record in message.content.array_records.values():
            total += sum(len(array.data) for array in record.values())
    return total
