"""Byzantine-robust aggregation: Flower's FedMedian, FedTrimmedAvg (Yin et al. 2018), Krum,
MultiKrum (Blanchard et al. 2017) and Bulyan (El Mhamdi et al. 2018).

What ours adds: the papers' minimum client counts are checked against ``min_train_nodes`` when
the scenario is validated (a round that cannot succeed is refused up front; Flower's Bulyan
would silently skip aggregation, and Krum would score with fewer neighbours than defined).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flwr.serverapp.strategy import Bulyan, FedMedian, FedTrimmedAvg, Krum

from simfl.flower_compat.strategies import select_multikrum
from simfl.strategies.byzantine import MultiKrumRule, select_by_recursive_krum

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
    """Flower's FedMedian: Yin et al. (2018)'s coordinate-wise median, no known difference."""
    return FedMedian(**config.sampling_kwargs())


def build_fedtrimmedavg(
    config: FedTrimmedAvgConfig, scenario: Scenario | None = None
) -> FedTrimmedAvg:
    """Flower's FedTrimmedAvg: Yin et al. (2018), no known difference; ``beta`` is trimmed at
    each end (floor(beta n) values per side), as in the paper."""
    return FedTrimmedAvg(**config.sampling_kwargs(), beta=config.beta)


def build_krum(config: KrumConfig, scenario: Scenario | None = None) -> Krum:
    """Flower's Krum: Blanchard et al. (2017), except that it scores with max(1, n - f - 2)
    neighbours, so it still picks a model when failures leave n <= f + 2 replies."""
    return Krum(**config.sampling_kwargs(), num_malicious_nodes=config.num_malicious_nodes)


def build_multikrum(config: MultiKrumConfig, scenario: Scenario | None = None) -> MultiKrumRule:
    """Flower's MultiKrum, which weights the selected models by n_k; ``weighting = "uniform"``
    is Blanchard et al. (2017)'s unweighted mean."""
    return MultiKrumRule(
        **config.sampling_kwargs(),
        num_malicious_nodes=config.num_malicious_nodes,
        num_nodes_to_select=config.num_nodes_to_select,
        weighting=config.weighting,
    )


def build_bulyan(config: BulyanConfig, scenario: Scenario | None = None) -> Bulyan:
    """Flower's Bulyan, which selects by one Krum pass; ``selection = "recursive_krum"`` is El
    Mhamdi et al. (2018)'s recursive selection. The trimmed mean around the median is theirs."""
    selection = {"multikrum": select_multikrum, "recursive_krum": select_by_recursive_krum}
    return Bulyan(
        **config.sampling_kwargs(),
        num_malicious_nodes=config.num_malicious_nodes,
        selection_rule=selection[config.selection],
    )
