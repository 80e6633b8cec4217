"""Label distribution shift: each class is shared among clients by Dirichlet(alpha) proportions.

The recipe of Hsu et al. (2019) / Yurochkin et al. (2019) as in Flower Datasets'
``DirichletPartitioner`` (same cut rule, same optional self-balancing: a client already above the
average size gets no more samples). What ours adds: it is vectorized (all classes' proportions in
one draw, owners written with one ``np.repeat``, parts by a radix sort; see
``bench/partition_dirichlet.py``), shuffles within each class before cutting, redraws with
derived seeds (so the split depends only on the seed) until every client holds ``min_size``
samples, reports an infeasible ``min_size`` as a PartitionError naming the parameter and the
largest value that fits, and accepts client ``size_weights`` so label shift composes with
quantity skew.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from partitioners.base import Partitioner, parts_from_owner
from partitioners.errors import PartitionError
from partitioners.params import DirichletParams

MAX_DRAWS = 100


class DirichletPartitioner(Partitioner[DirichletParams]):
    """Dirichlet(``params.alpha``) label shift; ``size_weights`` tilt each class's shares.

    ``size_weights`` (one positive weight per partition, e.g. from a quantity-skew draw) multiply
    every class's Dirichlet shares before they are renormalised, so a partition's expected size
    follows its weight while its label mix follows the Dirichlet draw.
    """

    def __init__(
        self,
        num_partitions: int,
        params: DirichletParams,
        seed: int,
        size_weights: np.ndarray | None = None,
    ) -> None:
        super().__init__(num_partitions, params, seed)
        if not params.alpha > 0:  # only reachable for params built without validation
            raise PartitionError("alpha", f"must be > 0, got {params.alpha}")
        self.size_weights = size_weights

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        labels = np.asarray(labels)
        min_size = self.params.min_size
        self.check_feasible(len(labels), min_size)
        for attempt in range(MAX_DRAWS):
            owner = self.draw_owners(labels, np.random.default_rng([self.seed, attempt]))
            if np.bincount(owner, minlength=self.num_partitions).min() >= min_size:
                return parts_from_owner(owner, self.num_partitions)
        raise PartitionError(
            "min_size",
            f"no Dirichlet(alpha={self.params.alpha}) split in {MAX_DRAWS} draws gives every "
            f"one of {self.num_partitions} clients {min_size} samples; "
            "lower min_size, raise alpha or use fewer clients",
        )

    def draw_owners(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Client id per sample: each class's shuffled samples cut by Dirichlet proportions."""
        _, codes = np.unique(labels, return_inverse=True)
        shuffled = rng.permutation(len(labels))
        grouped = shuffled[np.argsort(codes[shuffled], kind="stable")]  # by class, random within
        class_sizes = np.bincount(codes)
        shares = rng.dirichlet(
            np.full(self.num_partitions, self.params.alpha), size=len(class_sizes)
        )
        if self.size_weights is not None:
            shares = shares * self.size_weights
            shares /= shares.sum(axis=1, keepdims=True)
        counts = (
            self._balanced_counts(shares, class_sizes, len(labels))
            if self.params.self_balancing
            else _cut(shares, class_sizes)
        )
        owner = np.empty(len(labels), dtype=np.int64)
        clients = np.tile(np.arange(self.num_partitions), len(class_sizes))
        owner[grouped] = np.repeat(clients, counts.ravel())
        return owner

    def _balanced_counts(
        self, shares: np.ndarray, class_sizes: np.ndarray, total: int
    ) -> np.ndarray:
        """Flower's self-balancing: class by class, clients above the mean size get nothing."""
        average = total / self.num_partitions
        sizes = np.zeros(self.num_partitions, dtype=np.int64)
        counts = np.empty_like(shares, dtype=np.int64)
        for k, share in enumerate(shares):
            open_share = np.where(sizes > average, 0.0, share)
            share = open_share / open_share.sum() if open_share.sum() > 0 else share
            counts[k] = _cut(share[None, :], class_sizes[k : k + 1])[0]
            sizes += counts[k]
        return counts


def _cut(shares: np.ndarray, class_sizes: np.ndarray) -> np.ndarray:
    """[classes, clients] counts: floor of the cumulative shares, as Flower Datasets cuts."""
    bounds = (np.cumsum(shares, axis=1) * class_sizes[:, None]).astype(np.int64)
    bounds[:, -1] = class_sizes
    return np.diff(bounds, axis=1, prepend=0)
