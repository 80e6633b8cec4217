"""Clients report how many local steps they took (``local_steps`` among their metrics).

FedNova normalizes each update by its client's local work, which differs between clients (their
data sizes, DP-SGD's Poisson batches, a deadline's partial work): the server cannot infer it, so
a strategy whose train config carries :data:`LOCAL_STEPS_FLAG` gets this feature's trainer
stage, which counts the optimizer steps the client's trainer actually takes (one backward pass
each) and reports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import ClientMod, Feature, ModStage
from simfl.schema.strategy import LOCAL_STEPS_FLAG, LOCAL_STEPS_KEY
from simfl.strategies.gradient_terms import counting

if TYPE_CHECKING:
    from flwr.app import Context, Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan


class LocalStepsFeature(Feature):
    """Strategies whose train config asks for each client's number of local steps."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return LOCAL_STEPS_FLAG in scenario.strategy.client_train_config()

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        return [ClientMod(ModStage.TRAINER, "train", local_steps_mod(plan))]


def local_steps_mod(plan: RunPlan) -> Any:
    def mod(message: Message, context: Context, call_next: Any) -> Message:
        from simfl.engine.client_app import client_workspace

        work = client_workspace(plan, message)
        steps: list[int] = []
        work.trainer = counting(work.trainer, steps)
        reply = call_next(message, context)
        if not reply.has_error():
            reply.content["metrics"][LOCAL_STEPS_KEY] = float(len(steps))
        return reply

    return mod


def local_work(steps: float, momentum: float) -> float:
    """‖a_i‖₁: τ for SGD; Σ_k (1 - ρ^k) / (1 - ρ) over k = 1..τ with momentum ρ."""
    if momentum == 0.0:
        return steps
    return (steps - momentum * (1.0 - momentum**steps) / (1.0 - momentum)) / (1.0 - momentum)
