"""Partial work under a deadline (Li et al. 2020, FedProx's γ-inexact local solvers).

With ``systems.partial_work`` a sampled client whose whole local work would miss
``systems.deadline_s`` on its simulated device is told, in its train config
(:data:`MAX_STEPS_KEY`), how many minibatch steps fit before the deadline (after its download,
its upload of an update the size of the model, and its latency), and trains only those; the
server times it by that work and keeps its update. A client for which not even one step fits
is still dropped. The client side is :class:`PartialWorkFeature`'s mod, which hands the limit
to the trainer (:attr:`simfl.engine.worker.ClientWorkspace.max_steps`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import ClientMod, Feature, ModStage

if TYPE_CHECKING:
    from flwr.app import Context, Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan
    from simfl.systems.rounds import ClientTiming

#: The train config entry that limits a client's local steps.
MAX_STEPS_KEY = "max-local-steps"


def steps_within(
    timing: ClientTiming,
    client: int,
    budget_s: float,
    bytes_down: int,
    bytes_up: int,
    slowdown: float,
) -> int:
    """The most local steps whose simulated round fits ``budget_s`` (0: not even one)."""
    low, high = 0, timing.total_steps(client)
    while low < high:  # the round's time grows with its steps
        mid = (low + high + 1) // 2
        if timing.seconds(client, bytes_down, bytes_up, slowdown, mid) <= budget_s:
            low = mid
        else:
            high = mid - 1
    return low


def limit_steps(message: Message, steps: int) -> None:
    """Give ``message`` a train config of its own, with ``steps`` as its limit (the strategy's
    messages share one config record)."""
    from flwr.app import ConfigRecord, RecordDict

    config = ConfigRecord({**message.content["config"], MAX_STEPS_KEY: steps})
    message.content = RecordDict({**message.content, "config": config})


class PartialWorkFeature(Feature):
    """Clients honour the step limit the systems plan gives them."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return scenario.systems.partial_work

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        return [ClientMod(ModStage.PROTOCOL, "train", partial_work_mod(plan))]


def partial_work_mod(plan: RunPlan) -> Any:
    def mod(message: Message, context: Context, call_next: Any) -> Message:
        limit = message.content["config"].get(MAX_STEPS_KEY)
        if limit is not None:
            from simfl.engine.client_app import client_workspace

            client_workspace(plan, message).max_steps = int(limit)  # type: ignore[arg-type]
        return call_next(message, context)

    return mod
