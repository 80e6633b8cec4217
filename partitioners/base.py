"""What every partitioner is: labels (and metadata) in, one index array per partition out.

Plain numpy and pandas, nothing else: a partitioner works on arrays, so it can serve any data
container. :class:`partitioners.flower.FlowerPartitioner` adapts one to Flower Datasets'
``Partitioner`` interface for ``datasets.Dataset`` users.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import pandas as pd
from pydantic import BaseModel

from partitioners.errors import PartitionError

if TYPE_CHECKING:
    from partitioners.feature_shift import Condition

P = TypeVar("P", bound=BaseModel)


class Partitioner(ABC, Generic[P]):
    """``num_partitions`` parts from validated ``params``; deterministic for its ``seed``.

    Every sample lands in exactly one partition.
    """

    #: Metadata columns :meth:`split` reads (natural partitioners: e.g. ``speaker_id``).
    metadata_columns: tuple[str, ...] = ()

    def __init__(self, num_partitions: int, params: P, seed: int) -> None:
        if num_partitions < 1:
            raise PartitionError("num_partitions", f"must be >= 1, got {num_partitions}")
        self.num_partitions = num_partitions
        self.params = params
        self.seed = seed

    @abstractmethod
    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        """``num_partitions`` sorted int64 index arrays covering ``labels`` exactly once."""

    def client_conditions(self) -> list[Condition] | None:
        """Per-partition acoustic ``Condition``s (feature shift); ``None`` if audio is untouched."""
        return None

    def check_feasible(self, num_samples: int, min_size: int = 1) -> None:
        """Enough samples for every partition to hold ``min_size``, or a PartitionError."""
        if self.num_partitions > num_samples:
            raise PartitionError(
                "num_partitions",
                f"{self.num_partitions} clients but the dataset has {num_samples} samples; "
                f"allowed 1..{num_samples}",
            )
        if self.num_partitions * min_size > num_samples:
            raise PartitionError(
                "min_size",
                f"{self.num_partitions} clients x min_size {min_size} need "
                f"{self.num_partitions * min_size} samples, the dataset has {num_samples}; "
                f"allowed min_size <= {num_samples // self.num_partitions}",
            )


def parts_from_owner(owner: np.ndarray, num_partitions: int) -> list[np.ndarray]:
    """Sorted index arrays per client from a client id per sample (a stable radix sort)."""
    compact = owner.astype(np.int16 if num_partitions < 2**15 else np.int64)
    order = np.argsort(compact, kind="stable")
    sizes = np.bincount(owner, minlength=num_partitions)
    return np.split(order.astype(np.int64, copy=False), np.cumsum(sizes)[:-1])


def require_metadata(metadata: pd.DataFrame | None, column: str, kind: str) -> np.ndarray:
    """``metadata[column]`` as an array, or a PartitionError naming what ``kind`` needs."""
    if metadata is None or column not in metadata:
        raise PartitionError(
            "metadata", f"{kind!r} needs a {column!r} column in the dataset's metadata"
        )
    return metadata[column].to_numpy()
