"""FedAvg: Flower's own ``flwr.serverapp.strategy.FedAvg``, configured from the scenario."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flwr.serverapp.strategy import FedAvg

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy import StrategyBase


def build_fedavg(config: StrategyBase, scenario: Scenario | None = None) -> FedAvg:
    """Flower's FedAvg: McMahan et al. (2017), Algorithm 1, with no known difference
    (fedbn and fedper too, on the shared part; see :mod:`simfl.strategies.fidelity`)."""
    return FedAvg(**config.sampling_kwargs())
