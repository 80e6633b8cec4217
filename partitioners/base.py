"""What every simfl partitioner is: labels (and metadata) in, one index array per client out."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pandas as pd

from simfl.errors import ScenarioError


class Partitioner(ABC):
    """Deterministic for its seed; every sample lands in exactly one partition."""

    num_partitions: int

    @abstractmethod
    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        """``num_partitions`` sorted int64 index arrays covering ``labels`` exactly once."""

    def check_feasible(self, num_samples: int, min_size: int = 1) -> None:
        if self.num_partitions * min_size > num_samples:
            raise ScenarioError(
                f"key 'data.num_clients': {self.num_partitions} clients with at least {min_size} "
                f"sample(s) each need {self.num_partitions * min_size} samples, "
                f"the dataset has {num_samples}"
            )
