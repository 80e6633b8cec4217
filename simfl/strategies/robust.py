"""Byzantine-robust aggregation: Flower's FedMedian, FedTrimmedAvg (Yin et al. 2018), Krum,
MultiKrum (Blanchard et al. 2017) and Bulyan (El Mhamdi et al. 2018).

What ours adds: the papers' minimum client counts are checked against ``min_train_nodes`` when
the scenario is validated (a round that cannot succeed is refused up front; Flower's Bulyan
would silently skip aggregation, and Krum would score with fewer neighbours than defined).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flwr.serverapp.strategy import Bulyan, FedMedian, FedTrimmedAvg, Krum, MultiKrum

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy import (
        BulyanConfig,
        FedMedianConfig,
        FedTrimmedAvgConfig,
        KrumConfig,
        MultiKrumConfig,
    )


def build_fedmedian(config: FedMedianConfig, scenario: Scenario | None = None) -> FedMedian:
    return FedMedian(**config.sampling_kwargs())


def build_fedtrimmedavg(
    config: FedTrimmedAvgConfig, scenario: Scenario | None = None
) -> FedTrimmedAvg:
    return FedTrimmedAvg(**config.sampling_kwargs(), beta=config.beta)


def build_krum(config: KrumConfig, scenario: Scenario | None = None) -> Krum:
    return Krum(**config.sampling_kwargs(), num_malicious_nodes=config.num_malicious_nodes)


def build_multikrum(config: MultiKrumConfig, scenario: Scenario | None = None) -> MultiKrum:
    return MultiKrum(
        **config.sampling_kwargs(),
        num_malicious_nodes=config.num_malicious_nodes,
        num_nodes_to_select=config.num_nodes_to_select,
    )


def build_bulyan(config: BulyanConfig, scenario: Scenario | None = None) -> Bulyan:
    return Bulyan(**config.sampling_kwargs(), num_malicious_nodes=config.num_malicious_nodes)
