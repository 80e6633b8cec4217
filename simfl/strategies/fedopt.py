"""Flower's FedAdam, FedYogi and FedAdagrad with settings that select Reddi et al.'s own rule.

Reddi et al. (ICLR 2021), "Adaptive Federated Optimization", Algorithm 2, with
Delta_t the mean client delta:

    m_t = beta_1 m_{t-1} + (1 - beta_1) Delta_t                        (m_{-1} = 0)
    v_t = v_{t-1} + Delta_t^2                                           (FedAdagrad)
    v_t = v_{t-1} - (1 - beta_2) Delta_t^2 sign(v_{t-1} - Delta_t^2)    (FedYogi)
    v_t = beta_2 v_{t-1} + (1 - beta_2) Delta_t^2                       (FedAdam)
    x_{t+1} = x_t + eta m_t / (sqrt(v_t) + tau)                         (v_{-1} >= tau^2)

Flower's classes differ in four places, each kept as the default here (so existing runs and
their hashes do not change) and each one setting away from the paper:

- FedAdam scales eta by Adam's bias correction sqrt(1 - beta_2^(t+1)) / (1 - beta_1^(t+1)),
  t the server round: ``bias_correction = "none"`` removes it.
- FedAdagrad fixes beta_1 = 0 (no first-moment momentum): ``beta_1`` sets it.
- All three start from v_{-1} = 0: ``v0 = "tau_squared"`` starts from tau^2.
- All three weight Delta_t by num-examples where Algorithm 2 averages client deltas
  unweighted: ``weighting = "uniform"`` (see :mod:`simfl.strategies.weighting`).

Each class below overrides only what differs and otherwise runs Flower's code unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdagrad, FedAdam, FedYogi

from simfl.flower_compat.strategies import FedOpt
from simfl.schema.strategy import BiasCorrection, SecondMomentStart, Weighting
from simfl.strategies.weighting import WeightedOrUniformMean


def flower_bias_correction(server_round: int, beta_1: float, beta_2: float) -> float:
    """The factor Flower's FedAdam multiplies eta by in ``server_round`` (t + 1, not t)."""
    t = server_round + 1.0
    return float(np.sqrt(1 - np.power(beta_2, t)) / (1 - np.power(beta_1, t)))


class _PaperOptions(FedOpt):
    """``v0`` and ``weighting`` for every member; used as ``X(_PaperOptions, FlowerX,
    WeightedOrUniformMean)`` so Flower's averaging step honours ``weighting``.

    v_{-1} = tau^2: Reddi et al. (2021), Algorithm 2 takes v_{-1} >= tau^2 as input. Flower
    creates v_t as zeros at the first aggregation when none exists; with ``v0 = "tau_squared"``
    we create it as tau^2 once the first global model is known (in ``configure_train``), and
    Flower's own update then runs from there.
    """

    def __init__(
        self,
        *,
        v0: SecondMomentStart = "zero",
        weighting: Weighting = "num_examples",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.v0 = v0
        self.weighting = weighting

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = super().configure_train(server_round, arrays, config, grid)
        if self.v0 == "tau_squared" and self.v_t is None:
            current = self.current_arrays or {}
            self.v_t = {key: np.full(x.shape, self.tau**2) for key, x in current.items()}
        return messages


class FedAdamRule(_PaperOptions, FedAdam, WeightedOrUniformMean):
    """Flower's ``FedAdam``; optionally without its bias correction (and ``v0``, ``weighting``).

    ``bias_correction = "none"`` is Reddi et al.'s step x + eta m_t / (sqrt(v_t) + tau). Flower
    computes eta_norm = eta * c_t inside ``aggregate_train``; we hand it eta / c_t for the
    round, so its step uses eta (exact up to float rounding) and nothing else changes.
    """

    def __init__(self, *, bias_correction: BiasCorrection = "flower", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bias_correction = bias_correction

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        if self.bias_correction == "flower":
            return super().aggregate_train(server_round, replies)
        eta = self.eta
        self.eta = eta / flower_bias_correction(server_round, self.beta_1, self.beta_2)
        try:
            return super().aggregate_train(server_round, replies)
        finally:
            self.eta = eta


class FedYogiRule(_PaperOptions, FedYogi, WeightedOrUniformMean):
    """Flower's ``FedYogi`` (already Reddi et al.'s step); optionally ``v0``, ``weighting``."""


class FedAdagradRule(_PaperOptions, FedAdagrad, WeightedOrUniformMean):
    """Flower's ``FedAdagrad`` with the paper's first-moment momentum beta_1 (Flower: 0).

    Flower's ``FedOpt`` already applies m_t = beta_1 m + (1 - beta_1) Delta_t for every member;
    ``FedAdagrad`` only passes beta_1 = 0 to it, so setting the attribute restores the paper's
    FedAdagrad (beta_2 plays no part in it).
    """

    def __init__(self, *, beta_1: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.beta_1 = beta_1
