"""Byzantine-robust aggregation: Flower's FedMedian, FedTrimmedAvg (Yin et al. 2018), Krum,
MultiKrum (Blanchard et al. 2017) and Bulyan (El Mhamdi et al. 2018).

What ours adds: the papers' minimum client counts are checked against ``min_train_nodes`` when
the scenario is validated (a round that cannot succeed is refused up front; Flower's Bulyan
would silently skip aggregation, and Krum would score with fewer neighbours than defined).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from flwr.serverapp.strategy import Bulyan, FedMedian, FedTrimmedAvg, Krum
from flwr.serverapp.strategy.multikrum import select_multikrum
from pydantic import Field, model_validator

from simfl.schema.base import HASH_NEUTRAL
from simfl.strategies.base import StrategyBase
from simfl.strategies.byzantine import MultiKrumRule, select_by_recursive_krum

if TYPE_CHECKING:
    from simfl.config import Scenario


class FedMedianConfig(StrategyBase):
    """``[strategy] name = "fedmedian"``: coordinate-wise median of the client models."""

    name: Literal["fedmedian"]


class FedTrimmedAvgConfig(StrategyBase):
    """``[strategy] name = "fedtrimmedavg"``: per coordinate, trim ``beta`` at each end."""

    name: Literal["fedtrimmedavg"]
    beta: float = Field(default=0.2, ge=0.0, lt=0.5)


class _ByzantineBase(StrategyBase):
    num_malicious_nodes: int = Field(default=0, ge=0)

    def _needs(self, required: int, rule: str) -> None:
        if self.min_train_nodes < required:
            name, f = self.name, self.num_malicious_nodes  # type: ignore[attr-defined]
            raise ValueError(
                f"{name} with num_malicious_nodes = {f} needs min_train_nodes >= {required} "
                f"({rule}), got {self.min_train_nodes}"
            )


class KrumConfig(_ByzantineBase):
    """``[strategy] name = "krum"``: keep the one model closest to its n - f - 2 neighbours."""

    name: Literal["krum"]

    @model_validator(mode="after")
    def _enough_clients(self) -> KrumConfig:
        self._needs(2 * self.num_malicious_nodes + 3, "n > 2f + 2")
        return self


class MultiKrumConfig(_ByzantineBase):
    """``[strategy] name = "multikrum"``: average the ``num_nodes_to_select`` best Krum scores
    (weighted by num-examples as Flower does, or ``weighting = "uniform"`` as the paper does)."""

    name: Literal["multikrum"]
    num_nodes_to_select: int = Field(default=2, ge=1)
    weighting: Literal["num_examples", "uniform"] = Field(
        default="num_examples", json_schema_extra=HASH_NEUTRAL
    )

    @model_validator(mode="after")
    def _enough_clients(self) -> MultiKrumConfig:
        self._needs(2 * self.num_malicious_nodes + 3, "n > 2f + 2")
        if self.num_nodes_to_select > self.min_train_nodes:
            raise ValueError(
                f"num_nodes_to_select ({self.num_nodes_to_select}) exceeds min_train_nodes "
                f"({self.min_train_nodes})"
            )
        return self


class BulyanConfig(_ByzantineBase):
    """``[strategy] name = "bulyan"``: Krum selection, then a trimmed mean around the median.

    ``selection = "recursive_krum"`` is the paper's selection (Flower's: one Krum pass).
    """

    name: Literal["bulyan"]
    selection: Literal["multikrum", "recursive_krum"] = Field(
        default="multikrum", json_schema_extra=HASH_NEUTRAL
    )

    @model_validator(mode="after")
    def _enough_clients(self) -> BulyanConfig:
        self._needs(4 * self.num_malicious_nodes + 3, "n >= 4f + 3")
        return self


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
