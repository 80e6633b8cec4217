"""FedAdam, FedYogi, FedAdagrad (Reddi et al. 2021): Flower's ``FedOpt`` family.

The client learning rate is ``[train] lr`` (Flower's ``eta_l`` is unused by its strategies, so
it is not exposed). Flower's FedAdagrad fixes beta_1 = 0, so it has no momentum parameter here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from flwr.serverapp.strategy import FedAdagrad, FedAdam, FedYogi
from pydantic import Field

from simfl.strategies.base import StrategyBase

if TYPE_CHECKING:
    from simfl.config import Scenario


class FedAdagradConfig(StrategyBase):
    """``[strategy] name = "fedadagrad"``: server learning rate eta, adaptivity tau."""

    name: Literal["fedadagrad"]
    eta: float = Field(default=0.1, gt=0.0, le=10.0)
    tau: float = Field(default=1e-3, gt=0.0, le=1.0)


class FedAdamConfig(StrategyBase):
    """``[strategy] name = "fedadam"``."""

    name: Literal["fedadam"]
    eta: float = Field(default=0.1, gt=0.0, le=10.0)
    beta_1: float = Field(default=0.9, ge=0.0, lt=1.0)
    beta_2: float = Field(default=0.99, ge=0.0, lt=1.0)
    tau: float = Field(default=1e-3, gt=0.0, le=1.0)


class FedYogiConfig(StrategyBase):
    """``[strategy] name = "fedyogi"``."""

    name: Literal["fedyogi"]
    eta: float = Field(default=0.01, gt=0.0, le=10.0)
    beta_1: float = Field(default=0.9, ge=0.0, lt=1.0)
    beta_2: float = Field(default=0.99, ge=0.0, lt=1.0)
    tau: float = Field(default=1e-3, gt=0.0, le=1.0)


def build_fedadagrad(config: FedAdagradConfig, scenario: Scenario | None = None) -> FedAdagrad:
    return FedAdagrad(**config.sampling_kwargs(), eta=config.eta, tau=config.tau)


def build_fedadam(config: FedAdamConfig, scenario: Scenario | None = None) -> FedAdam:
    return FedAdam(
        **config.sampling_kwargs(),
        eta=config.eta,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        tau=config.tau,
    )


def build_fedyogi(config: FedYogiConfig, scenario: Scenario | None = None) -> FedYogi:
    return FedYogi(
        **config.sampling_kwargs(),
        eta=config.eta,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        tau=config.tau,
    )
