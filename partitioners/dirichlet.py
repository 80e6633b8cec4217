"""Label distribution shift: each class is shared among clients by Dirichlet(alpha) proportions.

The recipe of Hsu et al. (2019) / Yurochkin et al. (2019) as in Flower Datasets'
``DirichletPartitioner`` (same cut rule, same optional self-balancing: a client already above the
average size gets no more samples). What ours adds: it is vectorized (all classes' proportions in
one draw, owners written with one ``np.repeat``, parts by a radix sort; see
``bench/partition_dirichlet.py``), shuffles within each class before cutting, redraws with
derived seeds (so the split depends only on the seed) until every client holds ``min_size``
samples, reports an infeasible ``min_size`` as a ScenarioError naming the key instead of a
generic error, and accepts client ``size_weights`` so label shift composes with quantity skew.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from partitioners.base import Partitioner, parts_from_owner
from simfl.errors import ScenarioError

MAX_DRAWS = 100


class DirichletParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    alpha: float = Field(gt=0.0, le=1e6)
    min_size: int = Field(default=10, ge=0)
    self_balancing: bool = False


class DirichletConfig(DirichletParams):
    """``[partition] kind = "dirichlet"``: smaller ``alpha`` means stronger label skew."""

    kind: Literal["dirichlet"]


class DirichletPartitioner(Partitioner):
    def __init__(
        self,
        num_partitions: int,
        alpha: float,
        min_size: int,
        seed: int,
        self_balancing: bool = False,
        size_weights: np.ndarray | None = None,
        partition_by: str = "label",
    ) -> None:
        super().__init__(num_partitions, seed, partition_by)
        if alpha <= 0:
            raise ScenarioError(f"key 'partition.alpha': must be > 0, got {alpha}")
        self.alpha = alpha
        self.min_size = min_size
        self.self_balancing = self_balancing
        self.size_weights = size_weights

    @classmethod
    def from_config(
        cls, config: DirichletParams, num_partitions: int, seed: int
    ) -> DirichletPartitioner:
        return cls(num_partitions, config.alpha, config.min_size, seed, config.self_balancing)

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        labels = np.asarray(labels)
        self.check_feasible(len(labels), self.min_size)
        for attempt in range(MAX_DRAWS):
            owner = self.draw_owners(labels, np.random.default_rng([self.seed, attempt]))
            if np.bincount(owner, minlength=self.num_partitions).min() >= self.min_size:
                return parts_from_owner(owner, self.num_partitions)
        raise ScenarioError(
            f"key 'partition.min_size': no Dirichlet(alpha={self.alpha}) split in {MAX_DRAWS} "
            f"draws gives every one of {self.num_partitions} clients {self.min_size} samples; "
            "lower min_size, raise alpha or use fewer clients"
        )

    def draw_owners(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Client id per sample: each class's shuffled samples cut by Dirichlet proportions."""
        _, codes = np.unique(labels, return_inverse=True)
        shuffled = rng.permutation(len(labels))
        grouped = shuffled[np.argsort(codes[shuffled], kind="stable")]  # by class, random within
        class_sizes = np.bincount(codes)
        shares = rng.dirichlet(np.full(self.num_partitions, self.alpha), size=len(class_sizes))
        if self.size_weights is not None:
            shares = shares * self.size_weights
            shares /= shares.sum(axis=1, keepdims=True)
        counts = (
            self._balanced_counts(shares, class_sizes, len(labels))
            if self.self_balancing
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
