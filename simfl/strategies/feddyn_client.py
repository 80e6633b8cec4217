"""FedDyn's client step (Acar et al. 2021, Algorithm 1, lines 5-6).

The client minimizes L_k(θ) − ⟨g_k, θ⟩ + α/2‖θ − θ^{t−1}‖² by the scenario's local training,
the two penalties' gradient −g_k + α(θ − θ^{t−1}) added to every local gradient
(:mod:`simfl.strategies.gradient_terms`), then updates its linear term as line 6 does::

    g_k ← g_k − α (θ_k^t − θ^{t−1})

g_k is the client's own state (a client state file, never sent); it starts at zero.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import ClientMod, Feature, ModStage
from simfl.strategies.gradient_terms import GradientTerm, with_gradient_terms

if TYPE_CHECKING:
    import torch
    from flwr.app import Context, Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan

#: The client state files holding g_k.
STATE_NAME = "feddyn"


class FedDynFeature(Feature):
    """The clients of a FedDyn run: dynamically regularized local training."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return scenario.strategy.name == "feddyn"

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        return [ClientMod(ModStage.TRAINER, "train", feddyn_mod(plan))]


def dynamic_term(linear: torch.Tensor, anchor: torch.Tensor, alpha: float) -> GradientTerm:
    """The gradient of −⟨g_k, θ⟩ + α/2‖θ − θ^{t−1}‖² at θ."""
    return lambda grad, theta: (alpha * (theta - anchor) - linear).to(grad.dtype)


def updated_linear(
    linear: torch.Tensor, trained: torch.Tensor, anchor: torch.Tensor, alpha: float
) -> torch.Tensor:
    """Line 6: g_k − α(θ_k^t − θ^{t−1}), in float64, kept in g_k's dtype."""
    return (linear.double() - alpha * (trained.double() - anchor.double())).to(linear.dtype)


def feddyn_mod(plan: RunPlan) -> Any:
    alpha = plan.scenario.strategy.alpha  # type: ignore[union-attr]

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        import torch

        from simfl.engine.client_app import client_workspace
        from simfl.engine.client_state import ClientStateStore

        work = client_workspace(plan, message)
        store = ClientStateStore(plan.state_dir, STATE_NAME)  # type: ignore[arg-type]
        params = dict(work.model.named_parameters())
        names = [n for n in params if params[n].requires_grad and n in work.shared]
        own = store.load(work.client) or {}
        linear = {n: own.get(n, torch.zeros_like(work.shared[n])) for n in names}
        terms = {n: dynamic_term(linear[n], work.shared[n].clone(), alpha) for n in names}
        work.trainer = with_gradient_terms(work.trainer, terms, [])
        reply = call_next(message, context)
        if reply.has_error():
            return reply
        trained = reply.content["arrays"].to_torch_state_dict()
        new = {n: updated_linear(linear[n], trained[n], work.shared[n], alpha) for n in names}
        store.save(work.client, new)
        return reply

    return mod
