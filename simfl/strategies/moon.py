"""MOON (Li, He & Song 2021, CVPR): model-contrastive federated learning.

The model gets a projection head (a two-layer MLP, the paper's Sec. 3.2) between its encoder and
its output layer, so z = projection(encoder(x)) and logits = output(z); its parameters keep the
``head.`` prefix, so FedPer's pattern still selects the whole classifier. Each client adds to its
cross-entropy μ times the model-contrastive loss (Eq. 3)::

    ℓ_con = − log( exp(sim(z, z_glob)/τ) / (exp(sim(z, z_glob)/τ) + exp(sim(z, z_prev)/τ)) )

with z_glob from the global model it received and z_prev from its own model of its previous
round (client state; before it has one, the global model stands in and ℓ_con is constant).
sim is the cosine similarity. The server is FedAvg.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from simfl.engine.extensions import ClientMod, Feature, ModStage
from simfl.strategies.personal_models import personal_store, shared_copy

if TYPE_CHECKING:
    from flwr.app import Context, Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan
    from simfl.engine.worker import ClientWorkspace
    from simfl.training import LoopStats

STATE_NAME = "moon"


class ProjectedOutput(nn.Module):
    """``output(projection(h))``; the projection's output is the representation z."""

    def __init__(self, output: nn.Linear, projection_dim: int) -> None:
        super().__init__()
        width = output.in_features
        self.projection = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, projection_dim)
        )
        self.output = nn.Linear(projection_dim, output.out_features)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.output(self.projection(h))


def with_projection(model: nn.Module, projection_dim: int) -> nn.Module:
    """The model with its final linear layer (``head``, or the last of a ``head`` Sequential)
    replaced by a projection head and a new output layer."""
    head = model.head
    if isinstance(head, nn.Linear):
        model.head = ProjectedOutput(head, projection_dim)
    elif isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Linear):
        name = list(head._modules)[-1]
        head._modules[name] = ProjectedOutput(head[-1], projection_dim)
    else:
        raise ValueError(f"moon: {type(model).__name__}'s head ends in no linear layer")
    return model


def representation(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, z) of one forward pass."""
    projection = next(m for m in model.modules() if isinstance(m, ProjectedOutput)).projection
    captured: list[torch.Tensor] = []
    hook = projection.register_forward_hook(lambda module, args, out: captured.append(out))
    try:
        logits = model(x)
    finally:
        hook.remove()
    return logits, captured[0].flatten(1)


def contrastive_loss(
    z: torch.Tensor, z_glob: torch.Tensor, z_prev: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Eq. 3, averaged over the batch."""
    positive = nn.functional.cosine_similarity(z, z_glob, dim=1) / temperature
    negative = nn.functional.cosine_similarity(z, z_prev, dim=1) / temperature
    return -(positive - torch.logsumexp(torch.stack([positive, negative]), dim=0)).mean()


class MoonLoss:
    """A task (``batch_loss``) for ``train_epochs``: cross-entropy plus μ ℓ_con."""

    def __init__(self, global_model: nn.Module, previous: nn.Module, mu: float, tau: float):
        self.global_model, self.previous, self.mu, self.tau = global_model, previous, mu, tau

    def batch_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[Any, int]:
        logits, z = representation(model, x)
        loss = nn.functional.cross_entropy(logits, y)
        if self.mu > 0:
            with torch.no_grad():
                z_glob = representation(self.global_model, x)[1]
                z_prev = representation(self.previous, x)[1]
            loss = loss + self.mu * contrastive_loss(z, z_glob, z_prev, self.tau)
        return loss, int((logits.argmax(dim=1) == y).sum())


class MoonFeature(Feature):
    """MOON's model (projection head) and its clients' contrastive training."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return scenario.strategy.name == "moon"

    def adapt_model(self, plan: RunPlan, model: nn.Module) -> nn.Module:
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
                trainable=work.trainable, task=loss,
            )  # fmt: skip

        work.trainer = trainer
        reply = call_next(message, context)
        if not reply.has_error():
            store.save(work.client, shared_copy(work.model, work.shared))
        return reply

    return mod
