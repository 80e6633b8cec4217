"""IID: a uniformly random split into near-equal parts (the homogeneous baseline).

Flower Datasets' ``IidPartitioner`` shards the dataset contiguously (no shuffle), which is IID
only if the dataset's order is; ours draws a seeded random permutation first.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from partitioners.base import Partitioner


class IidConfig(BaseModel):
    """``[partition] kind = "iid"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["iid"]


class IidPartitioner(Partitioner):
    def __init__(self, num_partitions: int, seed: int, partition_by: str = "label") -> None:
        super().__init__(num_partitions, seed, partition_by)

    @classmethod
    def from_config(cls, config: IidConfig, num_partitions: int, seed: int) -> IidPartitioner:
        return cls(num_partitions, seed)

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        self.check_feasible(len(labels))
        order = np.random.default_rng(self.seed).permutation(len(labels))
        return [np.sort(part) for part in np.array_split(order, self.num_partitions)]
