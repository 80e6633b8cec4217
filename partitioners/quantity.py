"""Quantity skew: client sizes drawn from a power law, a log-normal or a Dirichlet, labels IID.

Flower Datasets' ``SizePartitioner`` / ``IdToSizeFncPartitioner`` take sizes the user already
has (deterministic functions of the id, contiguous slices). Ours draws random sizes from a
named distribution, guarantees ``min_size`` per client (the minimum first, the remainder shared
in proportion to the drawn weights, rounded by largest remainder) and shuffles the data, all
seeded. ``size_weights`` exposes the weights so quantity skew composes with label shift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from partitioners.base import Partitioner
from partitioners.errors import PartitionError
from partitioners.params import LogNormalParams, PowerLawParams, QuantityParams


def draw_weights(params: QuantityParams, num_clients: int, rng: np.random.Generator) -> np.ndarray:
    """Positive relative sizes, one per client, from the distribution ``params`` names."""
    if isinstance(params, PowerLawParams):
        return 1.0 + rng.pareto(params.exponent, num_clients)  # Pareto with x_m = 1
    if isinstance(params, LogNormalParams):
        return rng.lognormal(0.0, params.sigma, num_clients)
    return rng.dirichlet(np.full(num_clients, params.alpha))


def sizes_from_weights(weights: np.ndarray, total: int, min_size: int) -> np.ndarray:
    """``min_size`` each, the rest in proportion to ``weights`` (largest-remainder rounding)."""
    spare = total - min_size * len(weights)
    if spare < 0:
        raise PartitionError(
            "min_size",
            f"{len(weights)} clients x min_size {min_size} need {min_size * len(weights)} "
            f"samples, the dataset has {total}",
        )
    ideal = spare * weights / weights.sum()
    sizes = np.floor(ideal).astype(np.int64)
    leftover = spare - int(sizes.sum())
    sizes[np.argsort(sizes - ideal, kind="stable")[:leftover]] += 1
    return sizes + min_size


class QuantityPartitioner(Partitioner[QuantityParams]):
    """IID labels, sizes from ``params``: ``powerlaw``, ``lognormal`` or ``dirichlet-sizes``."""

    def size_weights(self) -> np.ndarray:
        """The drawn relative sizes (what a composition hands to the label-shift split)."""
        return draw_weights(self.params, self.num_partitions, np.random.default_rng(self.seed))

    def sizes(self, total: int) -> np.ndarray:
        """Samples per client for a dataset of ``total`` samples; sums to ``total``."""
        self.check_feasible(total)
        return sizes_from_weights(self.size_weights(), total, self.params.min_size)

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        sizes = self.sizes(len(labels))
        order = np.random.default_rng([self.seed, 1]).permutation(len(labels))
        return [np.sort(p) for p in np.split(order, np.cumsum(sizes)[:-1])]
