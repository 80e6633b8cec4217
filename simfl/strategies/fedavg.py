"""FedAvg: Flower's own ``flwr.serverapp.strategy.FedAvg``, configured from the scenario."""

from __future__ import annotations

from typing import Literal

from flwr.serverapp.strategy import FedAvg

from simfl.strategies.base import StrategyBase


class FedAvgConfig(StrategyBase):
    """``[strategy] name = "fedavg"``."""

    name: Literal["fedavg"]


def build_fedavg(config: FedAvgConfig) -> FedAvg:
    return FedAvg(**config.sampling_kwargs())
