"""Quantity skew: client sizes drawn from a power law, a log-normal or a Dirichlet, labels IID.

Flower Datasets' ``SizePartitioner`` / ``IdToSizeFncPartitioner`` take sizes the user already
has (deterministic functions of the id, contiguous slices). Ours draws random sizes from a
named distribution, guarantees ``min_size`` per client (the minimum first, the remainder shared
in proportion to the drawn weights, rounded by largest remainder) and shuffles the data, all
seeded. ``size_weights`` exposes the weights so quantity skew composes with label shift.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from partitioners.base import Partitioner
from simfl.errors import ScenarioError


class _QuantityBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min_size: int = Field(default=10, ge=0)


class PowerLawConfig(_QuantityBase):
    """``kind = "powerlaw"``: size above ``min_size`` ~ Pareto(``exponent``) (heavy tail)."""

    kind: Literal["powerlaw"]
    exponent: float = Field(default=1.5, gt=0.0, le=100.0)


class LogNormalConfig(_QuantityBase):
    """``kind = "lognormal"``: size above ``min_size`` ~ exp(N(0, ``sigma``^2))."""

    kind: Literal["lognormal"]
    sigma: float = Field(default=1.0, gt=0.0, le=10.0)


class DirichletSizesConfig(_QuantityBase):
    """``kind = "dirichlet-sizes"``: size shares ~ Dirichlet(``alpha``) (small = skewed)."""

    kind: Literal["dirichlet-sizes"]
    alpha: float = Field(default=1.0, gt=0.0, le=1e6)


QuantityConfig = PowerLawConfig | LogNormalConfig | DirichletSizesConfig


def draw_weights(config: QuantityConfig, num_clients: int, rng: np.random.Generator) -> np.ndarray:
    """Positive relative sizes, one per client, from the configured distribution."""
    if isinstance(config, PowerLawConfig):
        return 1.0 + rng.pareto(config.exponent, num_clients)  # Pareto with x_m = 1
    if isinstance(config, LogNormalConfig):
        return rng.lognormal(0.0, config.sigma, num_clients)
    return rng.dirichlet(np.full(num_clients, config.alpha))


def sizes_from_weights(weights: np.ndarray, total: int, min_size: int) -> np.ndarray:
    """``min_size`` each, the rest in proportion to ``weights`` (largest-remainder rounding)."""
    spare = total - min_size * len(weights)
    if spare < 0:
        raise ScenarioError(
            f"key 'partition.min_size': {len(weights)} clients x min_size {min_size} need "
            f"{min_size * len(weights)} samples, the dataset has {total}"
        )
    ideal = spare * weights / weights.sum()
    sizes = np.floor(ideal).astype(np.int64)
    leftover = spare - int(sizes.sum())
    sizes[np.argsort(sizes - ideal, kind="stable")[:leftover]] += 1
    return sizes + min_size


class QuantityPartitioner(Partitioner):
    def __init__(
        self, num_partitions: int, config: QuantityConfig, seed: int, partition_by="label"
    ) -> None:
        super().__init__(num_partitions, seed, partition_by)
        self.config = config

    @classmethod
    def from_config(cls, config: QuantityConfig, num_partitions: int, seed: int):
        return cls(num_partitions, config, seed)

    def size_weights(self) -> np.ndarray:
        return draw_weights(self.config, self.num_partitions, np.random.default_rng(self.seed))

    def sizes(self, total: int) -> np.ndarray:
        self.check_feasible(total)
        return sizes_from_weights(self.size_weights(), total, self.config.min_size)

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        sizes = self.sizes(len(labels))
        order = np.random.default_rng([self.seed, 1]).permutation(len(labels))
        return [np.sort(p) for p in np.split(order, np.cumsum(sizes)[:-1])]
