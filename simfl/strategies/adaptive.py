"""FedAdam, FedYogi, FedAdagrad (Reddi et al. 2021): Flower's ``FedOpt`` family.

The client learning rate is ``[train] lr`` (Flower's ``eta_l`` is unused by its strategies, so
it is not exposed). Flower's FedAdagrad fixes beta_1 = 0, so it has no momentum parameter here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flwr.serverapp.strategy import FedAdagrad, FedAdam, FedYogi

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy import FedAdagradConfig, FedAdamConfig, FedYogiConfig


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
