"""Any partitioner as a Flower Datasets ``Partitioner``, for ``datasets.Dataset`` users.

Flower Datasets' interface is ``partitioner.dataset = ds`` then ``load_partition(i)``. What the
adapter adds to ours: the split is computed once, on first load, from the dataset's
``partition_by`` column (read through Arrow, no per-row Python objects; values factorized in
sorted order, so string and integer labels work alike) and the metadata columns the wrapped
partitioner declares, then every partition is a ``Dataset.select`` of its rows. Only this module
imports ``datasets`` and ``flwr_datasets``.
"""

from __future__ import annotations

import datasets
import numpy as np
import pandas as pd
from flwr_datasets.partitioner import Partitioner as FlowerDatasetsPartitioner

from partitioners.base import Partitioner


class FlowerPartitioner(FlowerDatasetsPartitioner):
    """``partitioner`` over a ``datasets.Dataset``, split by its ``partition_by`` column."""

    def __init__(self, partitioner: Partitioner, partition_by: str = "label") -> None:
        super().__init__()
        self.partitioner = partitioner
        self.partition_by = partition_by
        self._parts: list[np.ndarray] | None = None

    @property
    def num_partitions(self) -> int:
        return self.partitioner.num_partitions

    def load_partition(self, partition_id: int) -> datasets.Dataset:
        """The rows of ``partition_id`` (the whole split is computed on the first call)."""
        if self._parts is None:
            self._parts = self._split()
        return self.dataset.select(self._parts[partition_id])

    def _split(self) -> list[np.ndarray]:
        column = self.dataset.with_format("arrow")[self.partition_by]
        labels = pd.factorize(column.to_numpy(), sort=True)[0]
        metadata = None
        present = [c for c in self.partitioner.metadata_columns if c in self.dataset.column_names]
        if present:  # a missing column the split needs is its PartitionError, naming it
            metadata = self.dataset.select_columns(present).to_pandas()
        return self.partitioner.split(labels, metadata)
