"""IID: a uniformly random split into near-equal parts (the homogeneous baseline).

Flower Datasets' ``IidPartitioner`` shards the dataset contiguously (no shuffle), which is IID
only if the dataset's order is; ours draws a seeded random permutation first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from partitioners.base import Partitioner
from partitioners.params import IidParams


class IidPartitioner(Partitioner[IidParams]):
    """A seeded permutation cut into ``num_partitions`` parts whose sizes differ by at most 1."""

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        self.check_feasible(len(labels))
        order = np.random.default_rng(self.seed).permutation(len(labels))
        return [np.sort(part) for part in np.array_split(order, self.num_partitions)]
