"""Byzantine clients: a seeded, fixed fraction of the clients send a corrupted update.

Applied on the client (in the ClientApp), so the server and its robust strategies see exactly
what a malicious client would send. Δ is the honest update (trained minus received weights);
the attacker sends ``w + f(Δ)``: sign-flip ``-scale·Δ``, scale ``scale·Δ``, gaussian a draw of
N(0, noise_std²) per weight (seeded per client and round); label-flip trains on C-1-y instead.
Only floating-point tensors are attacked (BatchNorm's step counter travels unchanged).

As a feature, one client mod at the attack stage: a malicious client's labels are changed in
its workspace before training, and its reply's update after it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import torch

from simfl.engine.extensions import ClientMod, Feature, ModStage
from simfl.schema.systems import AttackConfig
from simfl.seeding import derive_seed, rng_for

if TYPE_CHECKING:
    from flwr.app import Context, Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan

#: Attacks that change the update a client sends (label-flip changes only what it trains on).
UPDATE_ATTACKS = ("sign-flip", "scale", "gaussian")


@functools.lru_cache(maxsize=8)
def malicious_clients(seed: int, num_clients: int, fraction: float) -> frozenset[int]:
    """round(fraction · N) clients, the same for the whole run (a seeded permutation)."""
    count = int(round(fraction * num_clients))
    order = rng_for(seed, "byzantine-clients").permutation(num_clients)
    return frozenset(int(c) for c in order[:count])


class ClientAttack:
    """What one malicious client does to its labels and its update."""

    def __init__(self, config: AttackConfig, seed: int, client: int, server_round: int) -> None:
        self.config, self.seed = config, seed
        self.client, self.server_round = client, server_round

    def labels(self, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        if self.config.kind != "label-flip":
            return labels
        return (num_classes - 1) - labels

    def update(
        self, trained: dict[str, torch.Tensor], received: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        kind = self.config.kind
        if kind in ("none", "label-flip"):
            return trained
        generator = torch.Generator().manual_seed(
            derive_seed(self.seed, "attack-noise", self.client, self.server_round)
        )
        out = {}
        for name, weights in trained.items():
            if not weights.is_floating_point():
                out[name] = weights
                continue
            base = received[name].to(weights.dtype)
            delta = weights - base
            if kind == "sign-flip":
                out[name] = base - self.config.scale * delta
            elif kind == "scale":
                out[name] = base + self.config.scale * delta
            else:  # gaussian
                noise = torch.randn(weights.shape, generator=generator, dtype=weights.dtype)
                out[name] = base + self.config.noise_std * noise
        return out


def client_attack(
    config: AttackConfig, seed: int, num_clients: int, client: int, server_round: int
) -> ClientAttack | None:
    """The attack ``client`` carries out this round, or None for an honest client."""
    if config.kind == "none" or client not in malicious_clients(seed, num_clients, config.fraction):
        return None
    return ClientAttack(config, seed, client, server_round)


class AttackFeature(Feature):
    """Byzantine clients (``[systems.attack]``)."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return scenario.systems.attack.kind != "none"

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        return [ClientMod(ModStage.ATTACK, "train", attack_mod(plan))]


def attack_mod(plan: RunPlan) -> Any:
    """A malicious client trains on its attacked labels and sends its attacked update."""
    scenario = plan.scenario
    config, seed = scenario.systems.attack, scenario.scenario.seed

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        from flwr.app import ArrayRecord

        from simfl.engine.client_app import client_workspace
        from simfl.flower_compat.grid import message_partition

        client = message_partition(message)
        server_round = int(message.content["config"]["server-round"])
        attack = client_attack(config, seed, scenario.data.num_clients, client, server_round)
        if attack is None:
            return call_next(message, context)
        workspace = client_workspace(plan, message)
        workspace.labels = attack.labels(workspace.labels, plan.num_classes)
        reply = call_next(message, context)
        if config.kind in UPDATE_ATTACKS and not reply.has_error():
            trained = reply.content["arrays"].to_torch_state_dict()
            reply.content["arrays"] = ArrayRecord(attack.update(trained, workspace.shared))
        return reply

    return mod


__all__ = ["AttackFeature", "ClientAttack", "attack_mod", "client_attack", "malicious_clients"]
