"""FedNova (Wang et al. 2020, NeurIPS): normalized averaging of heterogeneous local work.

A client that takes more local steps moves further; FedAvg lets it pull the model towards its
own objective. FedNova divides each update by the client's local work ‖a_i‖₁ and rescales the
average by the effective work τ_eff (Eq. 6-7 of the paper, with p_i = n_i / n)::

    x <- x - η_g · τ_eff · Σ p_i (x - y_i) / ‖a_i‖₁        τ_eff = Σ p_i ‖a_i‖₁

For SGD ‖a_i‖₁ = τ_i, the client's steps; with momentum ρ, a_i = [1 - ρ^τ_i, ..., 1 - ρ] /
(1 - ρ) (the paper's Sec. 4 momentum case). τ_i is what each client reports
(:mod:`simfl.strategies.local_steps`): it differs with data size, DP-SGD's Poisson batches or a
deadline's partial work. What Flower adds: sampling, reply checks, metric aggregation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord

from simfl.schema.strategy import LOCAL_STEPS_KEY
from simfl.strategies.local_steps import local_work
from simfl.strategies.sent_model import SentModelStrategy

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy_noniid import FedNovaConfig


class FedNova(SentModelStrategy):
    """Flower's ``FedAvg`` sampling and reply checks, with FedNova's normalized step."""

    def __init__(self, config: FedNovaConfig, momentum: float) -> None:
        super().__init__(**config.sampling_kwargs())
        self.server_learning_rate = config.server_learning_rate
        self.momentum = momentum

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        contents = self.replies_to_aggregate(replies)
        if not contents or self.sent is None:
            return None, None
        metrics = [next(iter(content.metric_records.values())) for content in contents]
        counts = np.array([float(m[self.weighted_by_key]) for m in metrics])
        weights = counts / counts.sum()  # p_i
        work = np.array([local_work(float(m[LOCAL_STEPS_KEY]), self.momentum) for m in metrics])
        tau_eff = float(weights @ work)
        models = self.models_of(contents)
        out = {}
        for name in self.sent:
            x = self.sent[name].numpy()
            drift = np.stack([(x - model[name].numpy()).astype(np.float64) for model in models])
            step = np.tensordot(weights / np.maximum(work, 1e-12), drift, axes=1)
            out[name] = Array(np.asarray(x - self.server_learning_rate * tau_eff * step, x.dtype))
        aggregated = self.train_metrics_aggr_fn(contents, self.weighted_by_key)
        return ArrayRecord(out), aggregated


def build_fednova(config: FedNovaConfig, scenario: Scenario | None = None) -> FedNova:
    """FedNova with the clients' momentum (``train.momentum``) in its local work."""
    momentum = scenario.train.momentum if scenario is not None else 0.0
    return FedNova(config, momentum)
