"""Ditto (Li et al. 2021, ICML, Algorithm 1): a personal model per client beside the global one.

The global model is FedAvg's (the server runs Flower's ``FedAvg``; the clients' global update is
the scenario's local training). After it, each sampled client k takes the same number of local
epochs on its personal model v_k (line 8)::

    v_k ← v_k − η (∇F_k(v_k) + λ (v_k − w^t))

w^t being the global model it received; v_k starts from the initial model w⁰ and is the
client's own state (:mod:`simfl.strategies.personal_models`, which also reports it as the
personalized accuracy). λ = 0 is local training alone; a large λ pulls v_k onto w^t.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import ClientMod, Feature, ModStage
from simfl.strategies.personal_models import personal_evaluation, personal_store, shared_copy

if TYPE_CHECKING:
    import torch
    from flwr.app import Context, Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan
    from simfl.schema.sections import TrainConfig
    from simfl.training import LoopStats

STATE_NAME = "ditto"


class DittoFeature(Feature):
    """The clients of a Ditto run: a personal model trained after the global update."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return scenario.strategy.name == "ditto"

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        return [
            ClientMod(ModStage.TRAINER, "train", ditto_mod(plan)),
            personal_evaluation(plan, STATE_NAME),
        ]


def personal_step(
    model: torch.nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    seed: int,
    lam: float,
    global_model: dict[str, torch.Tensor],
    task: Any = None,
) -> LoopStats:
    """Line 8 for the scenario's local epochs: training with λ/2‖v − w^t‖² (FedProx's term,
    its anchor the received global model)."""
    from simfl.training import train_epochs

    return train_epochs(
        model, features, labels, config, seed, proximal_mu=lam, anchor=global_model, task=task
    )


def initial_shared(plan: RunPlan, names: Any) -> dict[str, torch.Tensor]:
    """w⁰'s entries ``names`` (the seeded initial model every process builds alike)."""
    state = plan.initial_model().state_dict()
    return {name: state[name].detach().clone() for name in names}


def ditto_mod(plan: RunPlan) -> Any:
    lam = plan.scenario.strategy.lam  # type: ignore[union-attr]

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        from simfl.engine.client_app import client_workspace
        from simfl.engine.worker import WORKER_CACHE
        from simfl.seeding import derive_seed

        work = client_workspace(plan, message)
        received = {name: value.clone() for name, value in work.shared.items()}
        reply = call_next(message, context)  # the global update
        if reply.has_error():
            return reply
        store, state = personal_store(plan, STATE_NAME), WORKER_CACHE.get(plan)
        personal = store.load(work.client) or initial_shared(plan, received)
        state.load(personal, state.own_local(work.client))
        seed = derive_seed(plan.scenario.scenario.seed, "ditto", work.client, work.server_round)
        stats = personal_step(
            state.model, work.features, work.labels, plan.scenario.train, seed, lam, received,
            work.task,
        )  # fmt: skip
        store.save(work.client, shared_copy(state.model, received))
        reply.content["metrics"]["personal_train_loss"] = stats.loss
        return reply

    return mod
