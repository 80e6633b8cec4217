"""FedDyn (Acar et al. 2021, ICLR, Algorithm 1): dynamic regularization of the clients.

Every client minimizes L_k(θ) − ⟨g_k, θ⟩ + α/2‖θ − θ^{t−1}‖², its linear term g_k the gradient
it was left with last time (:mod:`simfl.strategies.feddyn_client`), so that the clients'
stationary points agree with the global one. The server keeps h and, over the sampled P_t of the
m = ``data.num_clients`` clients::

    h ← h − α (1/m) Σ_{k∈P_t} (θ_k − θ^{t−1})        θ ← (1/|P_t|) Σ_{k∈P_t} θ_k − h/α

(with α = 0, h stays 0 and θ is the unweighted mean). Arrays that are not floating point
(BatchNorm's step counter) are averaged. What Flower adds: sampling, reply checks and metric
aggregation (``FedAvg``); ours: the rule above, and h in checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord

from simfl.strategies.sent_model import SentModelStrategy

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy_noniid import FedDynConfig


class FedDyn(SentModelStrategy):
    """Flower's ``FedAvg`` sampling and reply checks, with FedDyn's server rule."""

    def __init__(self, config: FedDynConfig, num_clients: int) -> None:
        super().__init__(**config.sampling_kwargs())
        self.alpha, self.num_clients = config.alpha, num_clients
        self.h: dict[str, np.ndarray] = {}  # by array name; empty: all zero

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        contents = self.replies_to_aggregate(replies)
        if not contents or self.sent is None:
            return None, None
        models = self.models_of(contents)
        out = {}
        for name in self.sent:
            previous = self.sent[name].numpy()
            thetas = np.stack([model[name].numpy().astype(np.float64) for model in models])
            mean = thetas.mean(axis=0)
            if np.issubdtype(previous.dtype, np.floating) and self.alpha > 0:
                h = self.h.get(name, np.zeros_like(mean))
                h = h - self.alpha * (thetas - previous).sum(axis=0) / self.num_clients
                self.h[name] = h
                mean = mean - h / self.alpha
            out[name] = Array(np.asarray(mean).astype(previous.dtype))
        return ArrayRecord(out), self.train_metrics_aggr_fn(contents, self.weighted_by_key)

    def state_dict(self) -> dict[str, Any]:
        """h: what FedDyn's server carries from round to round besides the model."""
        import torch

        return {"h": {name: torch.from_numpy(value.copy()) for name, value in self.h.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.h = {name: value.numpy() for name, value in state["h"].items()}


def build_feddyn(config: FedDynConfig, scenario: Scenario | None = None) -> FedDyn:
    """FedDyn over the scenario's population (m = ``data.num_clients``)."""
    if scenario is None:
        raise ValueError("feddyn needs the scenario: its server step divides by m clients")
    return FedDyn(config, scenario.data.num_clients)
