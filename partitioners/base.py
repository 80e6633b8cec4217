"""What every simfl partitioner is: labels (and metadata) in, one index array per client out.

Each partitioner is also a Flower Datasets ``Partitioner`` (``num_partitions``,
``load_partition``), so any ``datasets.Dataset`` user can use it: the split is computed once from
the dataset's ``partition_by`` column (and the metadata columns the partitioner needs) and cached.
"""

from __future__ import annotations

from abc import abstractmethod

import datasets
import numpy as np
import pandas as pd
from flwr_datasets.partitioner import Partitioner as FlowerPartitioner

from simfl.errors import ScenarioError


class Partitioner(FlowerPartitioner):
    """Deterministic for its seed; every sample lands in exactly one partition."""

    #: Metadata columns :meth:`split` reads (natural partitioners: e.g. ``speaker_id``).
    metadata_columns: tuple[str, ...] = ()

    def __init__(self, num_partitions: int, seed: int, partition_by: str = "label") -> None:
        super().__init__()
        if num_partitions < 1:
            raise ScenarioError(f"key 'data.num_clients': must be >= 1, got {num_partitions}")
        self._num_partitions = num_partitions
        self.seed = seed
        self.partition_by = partition_by
        self._parts: list[np.ndarray] | None = None

    @property
    def num_partitions(self) -> int:
        return self._num_partitions

    @abstractmethod
    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        """``num_partitions`` sorted int64 index arrays covering ``labels`` exactly once."""

    def client_conditions(self) -> list | None:
        """Per-client acoustic ``Condition``s (feature shift); ``None`` when audio is untouched."""
        return None

    def load_partition(self, partition_id: int) -> datasets.Dataset:
        """Flower Datasets interface: the rows of ``partition_id`` (split computed once)."""
        if self._parts is None:
            column = self.dataset.with_format("arrow")[self.partition_by]  # no per-row objects
            labels = pd.factorize(column.to_numpy(), sort=True)[0]
            metadata = None
            if self.metadata_columns:
                metadata = self.dataset.select_columns(list(self.metadata_columns)).to_pandas()
            self._parts = self.split(labels, metadata)
        return self.dataset.select(self._parts[partition_id])

    def check_feasible(self, num_samples: int, min_size: int = 1) -> None:
        if self.num_partitions > num_samples:
            raise ScenarioError(
                f"key 'data.num_clients': {self.num_partitions} clients but the dataset has "
                f"{num_samples} samples; allowed 1..{num_samples}"
            )
        if self.num_partitions * min_size > num_samples:
            raise ScenarioError(
                f"key 'partition.min_size': {self.num_partitions} clients x min_size {min_size} "
                f"need {self.num_partitions * min_size} samples, the dataset has {num_samples}; "
                f"allowed min_size <= {num_samples // self.num_partitions}"
            )


def parts_from_owner(owner: np.ndarray, num_partitions: int) -> list[np.ndarray]:
    """Sorted index arrays per client from a client id per sample (a stable radix sort)."""
    compact = owner.astype(np.int16 if num_partitions < 2**15 else np.int64)
    order = np.argsort(compact, kind="stable")
    sizes = np.bincount(owner, minlength=num_partitions)
    return np.split(order.astype(np.int64, copy=False), np.cumsum(sizes)[:-1])


def require_metadata(metadata: pd.DataFrame | None, column: str, kind: str) -> np.ndarray:
    if metadata is None or column not in metadata:
        raise ScenarioError(
            f"key 'partition.kind': {kind!r} needs a {column!r} column in the dataset's metadata"
        )
    return metadata[column].to_numpy()
