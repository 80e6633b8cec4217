"""Client actors that die during a run: replaced, their messages run again, within a budget.

A client actor's process can die under a run (the OOM killer, a stray ``kill``, a segfault in
a native library). The session's Ray backend (:mod:`simfl.flower_compat.transport`) replaces
the actor and runs the lost message again on any actor; a client's training is a function of
(seed, client, round, global model) and its local state is written atomically, so the retried
reply is the one the dead actor would have sent and the round stays bit-identical.

This object is what the backend and the round loop share: the backend reports each death
(from Flower's engine threads) and asks whether the round's budget,
``resources.actor_restarts``, allows another retry; the round loop opens each round and, after
each exchange, takes the deaths as infrastructure failures for ``failures.json`` (they are not
client failures and never count against ``min_train_nodes``) or stops the run once the budget
is spent.
"""

from __future__ import annotations

import threading

from simfl.engine.records import ClientFailure
from simfl.errors import ResumableError


class ActorRestartsExhausted(ResumableError):
    """More client actors died in one round than ``resources.actor_restarts`` allows: the run
    fails, resumable from its last checkpoint."""

    def __init__(self, server_round: int, deaths: int, budget: int, cause: str) -> None:
        self.line = (
            f"round {server_round}: {deaths} client actors died, more than "
            f"resources.actor_restarts = {budget} allows per round (last: {cause})"
        )
        super().__init__(self.line)

    def __str__(self) -> str:
        return f"{self.line}; resume with {self.resume_with}" if self.resume_with else self.line


class ActorRestarts:
    """The deaths of client actors in the current round, and the budget for retrying them."""

    def __init__(self, budget_per_round: int) -> None:
        self.budget = budget_per_round
        self._lock = threading.Lock()
        self._deaths_this_round = 0
        self._unreported: list[tuple[int, str]] = []

    def begin_round(self) -> None:
        """A new round: its budget is whole again."""
        with self._lock:
            self._deaths_this_round = 0

    def actor_died(self, partition: int, cause: str) -> bool:
        """A client actor died running a message for ``partition`` (``cause``: what Ray said);
        whether to run the message again (on a replacement). Called from Flower's engine
        threads."""
        with self._lock:
            self._deaths_this_round += 1
            self._unreported.append((partition, cause))
            return self._deaths_this_round <= self.budget

    def take(self, server_round: int, phase: str) -> list[ClientFailure]:
        """The deaths since the last call, as infrastructure failures of this round's
        ``phase``; raises :class:`ActorRestartsExhausted` once the round's budget is spent."""
        with self._lock:
            causes, self._unreported = self._unreported, []
            deaths = self._deaths_this_round
        if deaths > self.budget:
            raise ActorRestartsExhausted(server_round, deaths, self.budget, causes[-1][1])
        return [
            ClientFailure(server_round, phase, partition, -1, cause, kind="infrastructure")
            for partition, cause in causes
        ]
