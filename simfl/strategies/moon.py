"""MOON (Li, He & Song 2021, CVPR): model-contrastive federated learning.

The model gets a projection head (a two-layer MLP, the paper's Sec. 3.2) between its encoder and
its output layer, so z = projection(encoder(x)) and logits = output(z); its parameters keep the
``head.`` prefix, so FedPer's pattern still selects the whole classifier. Each client adds to its
cross-entropy μ times the model-contrastive loss (Eq. 3)::

    ℓ_con = − log( exp(sim(z, z_glob)/τ) / (exp(sim(z, z_glob)/τ) + exp(sim(z, z_prev)/τ)) )

with z_glob from the global model it received and z_prev from its own model of its previous
round (client state; before it has one, the global model stands in and ℓ_con is constant).
sim is the cosine similarity. The server is FedAvg. The model parts and the loss are in
:mod:`simfl.strategies.moon_model` (torch), imported when a run builds its model or trains.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import ClientMod, Feature, ModStage
from simfl.strategies.personal_models import personal_store, shared_copy

if TYPE_CHECKING:
    import torch
    from flwr.app import Context, Message
    from torch import nn

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan
    from simfl.engine.worker import ClientWorkspace
    from simfl.training import LoopStats

STATE_NAME = "moon"


class MoonFeature(Feature):
    """MOON's model (projection head) and its clients' contrastive training."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return scenario.strategy.name == "moon"

    def adapt_model(self, plan: RunPlan, model: nn.Module) -> nn.Module:
        from simfl.strategies.moon_model import with_projection

        return with_projection(model, plan.scenario.strategy.projection_dim)  # type: ignore[union-attr]

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        return [ClientMod(ModStage.TRAINER, "train", moon_mod(plan))]


def frozen_copy(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    twin = copy.deepcopy(model)
    twin.load_state_dict(state, strict=False)
    return twin.eval().requires_grad_(False)


def moon_mod(plan: RunPlan) -> Any:
    strategy = plan.scenario.strategy

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        from simfl.engine.client_app import client_workspace
        from simfl.strategies.moon_model import MoonLoss
        from simfl.training import train_epochs

        work = client_workspace(plan, message)
        store = personal_store(plan, STATE_NAME)
        global_model = frozen_copy(work.model, work.shared)
        previous_state = store.load(work.client)
        previous = frozen_copy(work.model, previous_state) if previous_state else global_model
        loss = MoonLoss(global_model, previous, strategy.mu, strategy.temperature)  # type: ignore[union-attr]

        def trainer(work: ClientWorkspace) -> LoopStats:
            return train_epochs(
                work.model, work.features, work.labels, plan.scenario.train, work.train_seed,
                trainable=work.trainable, task=loss, max_steps=work.max_steps,
            )  # fmt: skip

        work.trainer = trainer
        reply = call_next(message, context)
        if not reply.has_error():
            store.save(work.client, shared_copy(work.model, work.shared))
        return reply

    return mod
