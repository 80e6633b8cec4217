"""pFedMe (T. Dinh et al. 2020, NeurIPS, Algorithm 1): personalization by Moreau envelopes.

Each sampled client starts its local model w from the global w^t and, for every minibatch D of
its local epochs (the paper's R local rounds), solves the inner problem approximately with K
steps at ``personal_lr`` (line 7), then moves w towards the result (line 8)::

    θ ← argmin_θ f(θ; D) + λ/2 ‖θ − w‖²        w ← w − η λ (w − θ)

θ, the client's personal model, carries over from batch to batch and is its own state (the
personalized accuracy, :mod:`simfl.strategies.personal_models`); w is what it sends. The server
mixes the unweighted mean of the replies into its model (line 10)::

    w^{t+1} = (1 − β) w^t + β (1/|S|) Σ w_i
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord

from simfl.strategies.sent_model import SentModelStrategy
from simfl.strategies.weighting import uniform_aggregate

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy_noniid import PFedMeConfig


class PFedMe(SentModelStrategy):
    """Flower's ``FedAvg`` sampling and reply checks, with pFedMe's β-mixed server step."""

    def __init__(self, config: PFedMeConfig) -> None:
        super().__init__(**config.sampling_kwargs())
        self.beta = config.beta

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        mean, metrics = uniform_aggregate(self, replies)
        if mean is None or self.sent is None:
            return mean, metrics
        out = {}
        for name in self.sent:
            old = self.sent[name].numpy()
            mixed = (1.0 - self.beta) * old.astype(np.float64) + self.beta * mean[name].numpy()
            out[name] = Array(np.asarray(mixed).astype(old.dtype))
        return ArrayRecord(out), metrics


def build_pfedme(config: PFedMeConfig, scenario: Scenario | None = None) -> PFedMe:
    return PFedMe(config)


def pfedme_steps(
    model: Any,
    batches: Iterable[tuple[Any, Any]],
    loss_of: Any,
    lam: float,
    inner_steps: int,
    personal_lr: float,
    lr: float,
) -> dict[str, Any]:
    """Lines 6-8 over ``batches``: ``model`` holds θ (starting at w) and ends holding w; returns
    the final θ (the personal model) by parameter name."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    local = [p.detach().clone() for p in params]  # w
    inner = torch.optim.SGD(params, lr=personal_lr)
    for x, y in batches:
        for _ in range(inner_steps):  # line 7, approximately
            inner.zero_grad(set_to_none=True)
            penalty = sum((p - w).pow(2).sum() for p, w in zip(params, local, strict=True))
            (loss_of(model, x, y) + 0.5 * lam * penalty).backward()
            inner.step()
        with torch.no_grad():  # line 8
            for w, p in zip(local, params, strict=True):
                w.sub_(lr * lam * (w - p))
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    personal = {name: p.detach().clone() for name, p in zip(names, params, strict=True)}
    with torch.no_grad():
        for p, w in zip(params, local, strict=True):
            p.copy_(w)
    return personal
