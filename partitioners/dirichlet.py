"""Label distribution shift: each class is shared among clients by Dirichlet(alpha) proportions.

The standard recipe of Hsu et al. (2019) and Flower Datasets' ``DirichletPartitioner``, vectorized
per class; ours redraws the whole split (with a derived seed) until every client holds
``min_size`` samples, and reports an infeasible request instead of looping forever.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from partitioners.base import Partitioner
from simfl.errors import ScenarioError

MAX_DRAWS = 100


class DirichletConfig(BaseModel):
    """``[partition] kind = "dirichlet"``: smaller ``alpha`` means stronger label skew."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["dirichlet"]
    alpha: float = Field(gt=0.0, le=1e6)
    min_size: int = Field(default=10, ge=0)


class DirichletPartitioner(Partitioner):
    def __init__(self, num_partitions: int, alpha: float, min_size: int, seed: int) -> None:
        self.num_partitions = num_partitions
        self.alpha = alpha
        self.min_size = min_size
        self.seed = seed

    @classmethod
    def from_config(
        cls, config: DirichletConfig, num_partitions: int, seed: int
    ) -> DirichletPartitioner:
        return cls(num_partitions, config.alpha, config.min_size, seed)

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        labels = np.asarray(labels)
        self.check_feasible(len(labels), self.min_size)
        for attempt in range(MAX_DRAWS):
            owner = self._draw_owners(labels, np.random.default_rng([self.seed, attempt]))
            sizes = np.bincount(owner, minlength=self.num_partitions)
            if sizes.min() >= self.min_size:
                order = np.argsort(owner, kind="stable")
                return np.split(order, np.cumsum(sizes)[:-1])
        raise ScenarioError(
            f"key 'partition.min_size': no Dirichlet(alpha={self.alpha}) split in {MAX_DRAWS} "
            f"draws gives every one of {self.num_partitions} clients {self.min_size} samples; "
            "lower min_size, raise alpha or use fewer clients"
        )

    def _draw_owners(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Client id per sample: each class's shuffled samples cut by Dirichlet proportions."""
        owner = np.empty(len(labels), dtype=np.int64)
        for label in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == label))
            shares = rng.dirichlet(np.full(self.num_partitions, self.alpha))
            cuts = (np.cumsum(shares)[:-1] * len(members)).astype(np.int64)
            for client, part in enumerate(np.split(members, cuts)):
                owner[part] = client
        return owner
