"""Round planning: who may be sampled in a round, and whose update reaches aggregation.

The round loop asks its planner to sample within :meth:`RoundPlanner.sampling`, lets it set
each client's work (:meth:`RoundPlanner.assign_work`) and, once a training exchange is back,
asks which replies to aggregate (:meth:`RoundPlanner.admit`). This base
class is a server without systems constraints: Flower samples as always and every reply is
aggregated. A feature that simulates devices, availability, deadlines or a clock provides its
own planner (:meth:`simfl.engine.extensions.Feature.round_planner`), whose server callbacks
(a simulated clock) join the round's callbacks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flwr.app import Message
    from flwr.serverapp.strategy import Strategy

    from simfl.engine.records import ClientFailure, RoundRecord
    from simfl.engine.server_callbacks import ServerCallback
    from simfl.flower_compat.grid import VirtualClientGrid


@dataclass(frozen=True)
class TrainingRound:
    """One round's training exchange as the server saw it: what was sent (``messages``), the
    replies without error (``ok``), the failures, the round's record and the node-to-partition
    map."""

    server_round: int
    messages: list[Message]
    ok: list[Message]
    failures: list[ClientFailure]
    record: RoundRecord
    partition_of: dict[int, int]


class RoundPlanner:
    """No systems constraints: Flower samples among every client, every reply counts."""

    @contextlib.contextmanager
    def sampling(
        self, phase: str, grid: VirtualClientGrid, strategy: Strategy, server_round: int
    ) -> Iterator[None]:
        """The context in which the strategy samples ``phase``'s cohort (train, evaluate)."""
        yield

    def assign_work(self, server_round: int, messages: list[Message]) -> list[Message]:
        """The training messages as they are sent (each addressed to its partition): a planner
        may change what each client is asked to do (partial work under a deadline). Unchanged
        here."""
        return messages

    def admit(self, training: TrainingRound) -> list[Message]:
        """The replies whose updates reach aggregation (all of them here)."""
        return training.ok

    def server_callbacks(self) -> list[ServerCallback]:
        return []


__all__ = ["RoundPlanner", "TrainingRound"]
