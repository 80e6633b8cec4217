"""FedAvg: Flower's own ``flwr.serverapp.strategy.FedAvg``, configured from the scenario."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flwr.serverapp.strategy import FedAvg

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy import StrategyBase


def build_fedavg(config: StrategyBase, scenario: Scenario | None = None) -> FedAvg:
    return FedAvg(**config.sampling_kwargs())
