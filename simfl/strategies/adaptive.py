"""FedAdam, FedYogi, FedAdagrad (Reddi et al. 2021): Flower's ``FedOpt`` family.

The client learning rate is ``[train] lr`` (Flower's ``eta_l`` is unused by its strategies, so
it is not exposed). Defaults run Flower's rules exactly; ``bias_correction = "none"`` (FedAdam),
``beta_1`` (FedAdagrad), ``v0 = "tau_squared"`` and ``weighting = "uniform"`` (all three)
select the paper's rule, as :mod:`simfl.strategies.fedopt` explains and
:mod:`simfl.strategies.fidelity` lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from simfl.schema.base import HASH_NEUTRAL
from simfl.strategies.base import StrategyBase
from simfl.strategies.fedopt import FedAdagradRule, FedAdamRule, FedYogiRule

if TYPE_CHECKING:
    from simfl.config import Scenario


class FedAdagradConfig(StrategyBase):
    """``[strategy] name = "fedadagrad"``: server learning rate eta, adaptivity tau.

    Flower's FedAdagrad has no momentum (``beta_1 = 0``, the default); the paper's keeps it.
    In all three: ``v0`` is where the second moment starts (Flower's 0, or the paper's tau^2),
    ``weighting`` how client deltas are averaged (Flower's by num-examples, or the paper's
    unweighted mean).
    """

    name: Literal["fedadagrad"]
    eta: float = Field(default=0.1, gt=0.0, le=10.0)
    tau: float = Field(default=1e-3, gt=0.0, le=1.0)
    beta_1: float = Field(default=0.0, ge=0.0, lt=1.0, json_schema_extra=HASH_NEUTRAL)
    v0: Literal["zero", "tau_squared"] = Field(default="zero", json_schema_extra=HASH_NEUTRAL)
    weighting: Literal["num_examples", "uniform"] = Field(
        default="num_examples", json_schema_extra=HASH_NEUTRAL
    )


class FedAdamConfig(StrategyBase):
    """``[strategy] name = "fedadam"``; ``bias_correction = "none"`` is the paper's step."""

    name: Literal["fedadam"]
    eta: float = Field(default=0.1, gt=0.0, le=10.0)
    beta_1: float = Field(default=0.9, ge=0.0, lt=1.0)
    beta_2: float = Field(default=0.99, ge=0.0, lt=1.0)
    tau: float = Field(default=1e-3, gt=0.0, le=1.0)
    bias_correction: Literal["flower", "none"] = Field(
        default="flower", json_schema_extra=HASH_NEUTRAL
    )
    v0: Literal["zero", "tau_squared"] = Field(default="zero", json_schema_extra=HASH_NEUTRAL)
    weighting: Literal["num_examples", "uniform"] = Field(
        default="num_examples", json_schema_extra=HASH_NEUTRAL
    )


class FedYogiConfig(StrategyBase):
    """``[strategy] name = "fedyogi"``."""

    name: Literal["fedyogi"]
    eta: float = Field(default=0.01, gt=0.0, le=10.0)
    beta_1: float = Field(default=0.9, ge=0.0, lt=1.0)
    beta_2: float = Field(default=0.99, ge=0.0, lt=1.0)
    tau: float = Field(default=1e-3, gt=0.0, le=1.0)
    v0: Literal["zero", "tau_squared"] = Field(default="zero", json_schema_extra=HASH_NEUTRAL)
    weighting: Literal["num_examples", "uniform"] = Field(
        default="num_examples", json_schema_extra=HASH_NEUTRAL
    )


def build_fedadagrad(config: FedAdagradConfig, scenario: Scenario | None = None) -> FedAdagradRule:
    """Flower's FedAdagrad (beta_1 = 0, v_{-1} = 0, Delta weighted by n_k); ``beta_1``,
    ``v0 = "tau_squared"`` and ``weighting = "uniform"`` give Reddi et al.'s Algorithm 2."""
    return FedAdagradRule(
        **config.sampling_kwargs(),
        eta=config.eta,
        tau=config.tau,
        beta_1=config.beta_1,
        v0=config.v0,
        weighting=config.weighting,
    )


def build_fedadam(config: FedAdamConfig, scenario: Scenario | None = None) -> FedAdamRule:
    """Flower's FedAdam (Adam bias correction on eta, v_{-1} = 0, Delta weighted by n_k);
    ``bias_correction = "none"``, ``v0 = "tau_squared"`` and ``weighting = "uniform"`` give
    Reddi et al.'s Algorithm 2."""
    return FedAdamRule(
        **config.sampling_kwargs(),
        eta=config.eta,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        tau=config.tau,
        bias_correction=config.bias_correction,
        v0=config.v0,
        weighting=config.weighting,
    )


def build_fedyogi(config: FedYogiConfig, scenario: Scenario | None = None) -> FedYogiRule:
    """Flower's FedYogi (v_{-1} = 0, Delta weighted by n_k); ``v0 = "tau_squared"`` and
    ``weighting = "uniform"`` give Reddi et al.'s Algorithm 2."""
    return FedYogiRule(
        **config.sampling_kwargs(),
        eta=config.eta,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        tau=config.tau,
        v0=config.v0,
        weighting=config.weighting,
    )
