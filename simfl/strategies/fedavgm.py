"""FedAvgM (Hsu et al. 2019): Flower's ``FedAvgM``, server momentum on the averaged update."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from flwr.serverapp.strategy import FedAvgM
from pydantic import Field

from simfl.strategies.base import StrategyBase

if TYPE_CHECKING:
    from simfl.config import Scenario


class FedAvgMConfig(StrategyBase):
    """``[strategy] name = "fedavgm"``: v <- momentum * v + (w - avg); w <- w - lr * v.

    Momentum defaults to 0.9 (Flower's 0.0 would make this FedAvg).
    """

    name: Literal["fedavgm"]
    server_learning_rate: float = Field(default=1.0, gt=0.0, le=10.0)
    server_momentum: float = Field(default=0.9, ge=0.0, lt=1.0)


def build_fedavgm(config: FedAvgMConfig, scenario: Scenario | None = None) -> FedAvgM:
    """Flower's FedAvgM: Hsu et al. (2019) with no known difference; Delta is weighted by n_k
    and ``server_learning_rate`` generalises the paper's unit step (1, the default)."""
    return FedAvgM(
        **config.sampling_kwargs(),
        server_learning_rate=config.server_learning_rate,
        server_momentum=config.server_momentum,
    )
