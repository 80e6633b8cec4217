"""SCAFFOLD's client step (Karimireddy et al. 2020, Algorithm 1, lines 8-13).

Each local step is y <- y - η_l (g(y) - c_i + c): the correction c - c_i is added to every
parameter's gradient during the backward pass (:mod:`simfl.strategies.gradient_terms`), so
the scenario's optimizer, momentum and weight decay apply to the corrected gradient. After K
steps the client takes option II of line 12::

    c_i+ = c_i - c + (x - y) / (K η_l)

keeps c_i+ as its own state (a client state file, like FedPer's head: it never travels) and
sends Δc_i = c_i+ - c_i beside its model (:data:`~simfl.strategies.scaffold.DELTA_KEY`). K is
the number of optimizer steps the client actually took. A client without a state file has
c_i = 0, as the paper starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import ClientMod, Feature, ModStage
from simfl.schema.strategy import LOCAL_STEPS_KEY
from simfl.strategies.gradient_terms import constant, with_gradient_terms
from simfl.strategies.local_steps import local_work
from simfl.strategies.scaffold import CONTROL_KEY, DELTA_KEY

if TYPE_CHECKING:
    import torch
    from flwr.app import Context, Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan

#: The client state files holding c_i (beside the clients' local parts).
STATE_NAME = "scaffold"


class ScaffoldFeature(Feature):
    """The clients of a SCAFFOLD run correct their steps and learn their control variates."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return scenario.strategy.name == "scaffold"

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        return [ClientMod(ModStage.TRAINER, "train", scaffold_mod(plan))]


def control_update(
    c: dict[str, torch.Tensor],
    c_i: dict[str, torch.Tensor],
    x: dict[str, torch.Tensor],
    y: dict[str, torch.Tensor],
    steps: int,
    learning_rate: float,
    momentum: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Option II: c_i+ = c_i - c + (x - y) / (K η_l), in float64, kept in c_i's dtype. With
    momentum ρ the K steps move y by η_l ‖a‖₁ mean gradients (FedNova's local work), so K
    becomes ‖a‖₁: the mean gradient, not 1/(1 − ρ) times it, which would make c_i explode."""
    scale = 1.0 / (max(local_work(float(steps), momentum), 1e-12) * learning_rate)
    return {
        name: (
            c_i[name].double() - c[name].double() + (x[name].double() - y[name].double()) * scale
        ).to(c_i[name].dtype)
        for name in c_i
    }


def scaffold_mod(plan: RunPlan) -> Any:
    """Corrects the client's steps by c - c_i, then replies with Δc_i and keeps c_i+."""
    learning_rate, momentum = plan.scenario.train.lr, plan.scenario.train.momentum

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        import torch
        from flwr.app import ArrayRecord

        from simfl.engine.client_app import client_workspace
        from simfl.engine.client_state import ClientStateStore

        work = client_workspace(plan, message)
        store = ClientStateStore(plan.state_dir, STATE_NAME)  # type: ignore[arg-type]
        names = [
            n for n, p in work.model.named_parameters() if p.requires_grad and n in work.shared
        ]
        server = message.content[CONTROL_KEY].to_torch_state_dict()
        own = store.load(work.client) or {}
        c = {name: server.get(name, torch.zeros_like(work.shared[name])) for name in names}
        c_i = {name: own.get(name, torch.zeros_like(c[name])) for name in names}
        steps: list[int] = []
        corrections = {name: constant(c[name] - c_i[name]) for name in names}
        work.trainer = with_gradient_terms(work.trainer, corrections, steps)
        reply = call_next(message, context)
        if reply.has_error():
            return reply
        trained = reply.content["arrays"].to_torch_state_dict()
        c_plus = control_update(c, c_i, work.shared, trained, len(steps), learning_rate, momentum)
        store.save(work.client, c_plus)
        delta = {name: (c_plus[name] - c_i[name]).numpy() for name in names}
        reply.content[DELTA_KEY] = ArrayRecord({k: _array(v) for k, v in delta.items()})
        reply.content["metrics"][LOCAL_STEPS_KEY] = float(len(steps))  # K, per client
        return reply

    return mod


def _array(value: Any) -> Any:
    from flwr.app import Array

    return Array(value)
