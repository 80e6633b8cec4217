"""FedAdam, FedYogi, FedAdagrad (Reddi et al. 2021): Flower's ``FedOpt`` family.

The client learning rate is ``[train] lr`` (Flower's ``eta_l`` is unused by its strategies, so
it is not exposed). Defaults run Flower's rules exactly; ``bias_correction = "none"`` (FedAdam),
``beta_1`` (FedAdagrad), ``v0 = "tau_squared"`` and ``weighting = "uniform"`` (all three)
select the paper's rule, as :mod:`simfl.strategies.fedopt` explains and
:mod:`simfl.strategies.fidelity` lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.strategies.fedopt import FedAdagradRule, FedAdamRule, FedYogiRule

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy import (
        FedAdagradConfig,
        FedAdamConfig,
        FedOptConfigBase,
        FedYogiConfig,
    )


def rule_kwargs(config: FedOptConfigBase) -> dict[str, Any]:
    """The rule's keyword arguments: Flower's sampling ones plus every option the strategy's
    own config section declares (each named as the rule's argument)."""
    from simfl.schema.strategy import StrategyBase

    own = config.model_dump(exclude={"name", *StrategyBase.model_fields})
    return {**config.sampling_kwargs(), **own}


def build_fedadagrad(config: FedAdagradConfig, scenario: Scenario | None = None) -> FedAdagradRule:
    """Flower's FedAdagrad (beta_1 = 0, v_{-1} = 0, Delta weighted by n_k); ``beta_1``,
    ``v0 = "tau_squared"`` and ``weighting = "uniform"`` give Reddi et al.'s Algorithm 2."""
    return FedAdagradRule(**rule_kwargs(config))


def build_fedadam(config: FedAdamConfig, scenario: Scenario | None = None) -> FedAdamRule:
    """Flower's FedAdam (Adam bias correction on eta, v_{-1} = 0, Delta weighted by n_k);
    ``bias_correction = "none"``, ``v0 = "tau_squared"`` and ``weighting = "uniform"`` give
    Reddi et al.'s Algorithm 2."""
    return FedAdamRule(**rule_kwargs(config))


def build_fedyogi(config: FedYogiConfig, scenario: Scenario | None = None) -> FedYogiRule:
    """Flower's FedYogi (v_{-1} = 0, Delta weighted by n_k); ``v0 = "tau_squared"`` and
    ``weighting = "uniform"`` give Reddi et al.'s Algorithm 2."""
    return FedYogiRule(**rule_kwargs(config))
