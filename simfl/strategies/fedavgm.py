"""FedAvgM (Hsu et al. 2019): Flower's ``FedAvgM``, server momentum on the averaged update."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flwr.serverapp.strategy import FedAvgM

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy import FedAvgMConfig


def build_fedavgm(config: FedAvgMConfig, scenario: Scenario | None = None) -> FedAvgM:
    """Flower's FedAvgM: Hsu et al. (2019) with no known difference; Delta is weighted by n_k
    and ``server_learning_rate`` generalises the paper's unit step (1, the default)."""
    return FedAvgM(
        **config.sampling_kwargs(),
        server_learning_rate=config.server_learning_rate,
        server_momentum=config.server_momentum,
    )
