"""SCAFFOLD (Karimireddy et al. 2020, Algorithm 1): control variates correct client drift.

The server keeps the model x and the server control variate c; it sends c beside x (the
record :data:`CONTROL_KEY`), and each client's reply carries Δc_i beside its model y_i (the
record :data:`DELTA_KEY`, written by :mod:`simfl.strategies.scaffold_client`). Then, as in the
paper's lines 16-17::

    x <- x + η_g · (1/|S|) Σ (y_i - x)        c <- c + (1/N) Σ Δc_i

N is every client of the population; ``weighting = "num_examples"`` weights Δy by n_k instead of
1/|S| (FedAvg's rule). c holds the model's trainable parameters only, learnt from the first
replies (a client treats a missing c as zero, as it is at the start); arrays that are not
parameters (BatchNorm statistics) are averaged as FedAvg does. What Flower adds: reply checks
and metric aggregation (``FedAvg``); what ours adds: the rule above and c in checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid

from simfl.strategies.sent_model import SentModelStrategy

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy_noniid import ScaffoldConfig

#: The server control variate c, sent with the global model.
CONTROL_KEY = "scaffold-c"
#: A client's Δc_i = c_i+ - c_i, sent with its model.
DELTA_KEY = "scaffold-delta-c"


class Scaffold(SentModelStrategy):
    """Flower's ``FedAvg`` sampling and reply checks, with SCAFFOLD's server rule."""

    def __init__(self, config: ScaffoldConfig, num_clients: int) -> None:
        super().__init__(**config.sampling_kwargs())
        self.server_learning_rate = config.server_learning_rate
        self.weighting = config.weighting
        self.num_clients = num_clients
        self.control: dict[str, np.ndarray] = {}  # c, by parameter name (empty: all zero)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(super().configure_train(server_round, arrays, config, grid))
        control = ArrayRecord({name: Array(value) for name, value in self.control.items()})
        for message in messages:  # one record object: a batch of clients carries it once
            message.content[CONTROL_KEY] = control
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        deltas = [reply.content[DELTA_KEY] for reply in replies]
        for reply in replies:  # Flower's checks expect the model as the only ArrayRecord
            del reply.content[DELTA_KEY]
        contents = self.replies_to_aggregate(replies)
        if not contents or self.sent is None:
            return None, None
        models = self.models_of(contents)
        counts = [
            float(next(iter(content.metric_records.values()))[self.weighted_by_key])
            for content in contents
        ]
        weights = uniform_or_counts(self.weighting, counts)
        new = self.server_step(self.sent, models, weights, deltas[0].keys())
        self.update_control(deltas)
        return new, self.train_metrics_aggr_fn(contents, self.weighted_by_key)

    def server_step(
        self,
        sent: ArrayRecord,
        models: list[ArrayRecord],
        weights: np.ndarray,
        parameters: Iterable[str],
    ) -> ArrayRecord:
        """x + η_g Σ w_i (y_i - x) on the parameters; the weighted mean elsewhere."""
        parameters = set(parameters)
        out = {}
        for name in sent:
            x = sent[name].numpy()
            ys = np.stack([model[name].numpy().astype(np.float64) for model in models])
            mean = np.tensordot(weights, ys, axes=1)
            if name in parameters:
                mean = x + self.server_learning_rate * (mean - x)
            out[name] = Array(np.asarray(mean).astype(x.dtype))
        return ArrayRecord(out)

    def update_control(self, deltas: list[ArrayRecord]) -> None:
        """c <- c + (1/N) Σ Δc_i (line 17: |S|/N times the mean over the sampled clients)."""
        for name in deltas[0]:
            total = np.sum([delta[name].numpy().astype(np.float64) for delta in deltas], axis=0)
            current = self.control.get(name, np.zeros_like(total))
            dtype = deltas[0][name].numpy().dtype
            self.control[name] = (current + total / self.num_clients).astype(dtype)

    def state_dict(self) -> dict[str, Any]:
        """c: what SCAFFOLD's server carries from round to round besides the model."""
        import torch

        return {"control": {name: torch.from_numpy(v.copy()) for name, v in self.control.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.control = {name: value.numpy() for name, value in state["control"].items()}


def uniform_or_counts(weighting: str, counts: list[float]) -> np.ndarray:
    """1/|S| each (the paper), or n_k / Σ n (``weighting = "num_examples"``)."""
    if weighting == "uniform":
        return np.full(len(counts), 1.0 / len(counts))
    total = float(sum(counts))
    return np.asarray(counts, dtype=np.float64) / total


def build_scaffold(config: ScaffoldConfig, scenario: Scenario | None = None) -> Scaffold:
    """SCAFFOLD over the scenario's population (N = ``data.num_clients``)."""
    if scenario is None:
        raise ValueError("scaffold needs the scenario: its server step divides by N clients")
    return Scaffold(config, scenario.data.num_clients)
