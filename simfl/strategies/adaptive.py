"""FedAdam, FedYogi, FedAdagrad (Reddi et al. 2021): Flower's ``FedOpt`` family.

The client learning rate is ``[train] lr`` (Flower's ``eta_l`` is unused by its strategies, so
it is not exposed). Defaults run Flower's rules exactly; ``bias_correction = "none"`` (FedAdam),
``beta_1`` (FedAdagrad), ``v0 = "tau_squared"`` and ``weighting = "uniform"`` (all three)
select the paper's rule, as :mod:`simfl.strategies.fedopt` explains and
:mod:`simfl.strategies.fidelity` lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simfl.strategies.fedopt import FedAdagradRule, FedAdamRule, FedYogiRule

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy import FedAdagradConfig, FedAdamConfig, FedYogiConfig


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
