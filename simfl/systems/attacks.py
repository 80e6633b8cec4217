"""Byzantine clients: a seeded, fixed fraction of the clients send a corrupted update.

Applied on the client (in the ClientApp), so the server and its robust strategies see exactly
what a malicious client would send. Δ is the honest update (trained minus received weights);
the attacker sends ``w + f(Δ)``: sign-flip ``-scale·Δ``, scale ``scale·Δ``, gaussian a draw of
N(0, noise_std²) per weight (seeded per client and round); label-flip trains on C-1-y instead.
Only floating-point tensors are attacked (BatchNorm's step counter travels unchanged).
"""

from __future__ import annotations

import functools

import torch

from simfl.schema.systems import AttackConfig
from simfl.seeding import derive_seed, rng_for


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


__all__ = ["ClientAttack", "client_attack", "malicious_clients"]
