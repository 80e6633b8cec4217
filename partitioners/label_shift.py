"""Label shift with a fixed structure: pathological k-labels-per-client and label-sorted shards.

Flower Datasets has ``PathologicalPartitioner`` and ``ShardPartitioner``; both may leave samples
out (classes no partition drew; an incomplete last shard). Ours place every sample exactly once:
the pathological split deals the shuffled labels round-robin so that every label has a holder
and every client exactly ``k`` distinct labels (each label's samples shared equally among its
holders), and shards are near-equal cuts of the label-sorted data (McMahan et al., 2017).
Infeasible requests are PartitionErrors naming the parameter and what would fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from partitioners.base import Partitioner, parts_from_owner
from partitioners.errors import PartitionError
from partitioners.params import PathologicalParams, ShardsParams


def _grouped_by_label(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample indices grouped by label code, in random order within each label."""
    shuffled = rng.permutation(len(codes))
    return shuffled[np.argsort(codes[shuffled], kind="stable")]


class PathologicalPartitioner(Partitioner[PathologicalParams]):
    """Every partition holds exactly ``params.k`` labels; every label has a holder."""

    def client_labels(self, num_labels: int, rng: np.random.Generator) -> np.ndarray:
        """[clients, k] label codes: shuffled labels dealt round-robin, k consecutive each."""
        k = self.params.k
        if k > num_labels:
            raise PartitionError(
                "k",
                f"{k} labels per client, but the data has {num_labels} labels; "
                f"allowed 1..{num_labels}",
            )
        if self.num_partitions * k < num_labels:
            raise PartitionError(
                "k",
                f"{self.num_partitions} clients x k={k} labels cannot hold all {num_labels} "
                f"labels; allowed k >= {-(-num_labels // self.num_partitions)} (or more clients)",
            )
        slots = np.arange(self.num_partitions * k).reshape(self.num_partitions, k)
        return rng.permutation(num_labels)[slots % num_labels]

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        min_size = self.params.min_size
        self.check_feasible(len(labels), max(min_size, self.params.k))
        rng = np.random.default_rng(self.seed)
        _, codes = np.unique(labels, return_inverse=True)
        held = self.client_labels(int(codes.max()) + 1 if len(codes) else 0, rng)
        owner = np.empty(len(labels), dtype=np.int64)
        grouped = _grouped_by_label(codes, rng)
        bounds = np.cumsum(np.bincount(codes))
        for label, members in enumerate(np.split(grouped, bounds[:-1])):
            holders = np.flatnonzero((held == label).any(axis=1))
            if len(members) < len(holders):
                raise PartitionError(
                    "k",
                    f"label {label} has {len(members)} samples for {len(holders)} clients "
                    "holding it; lower k or data.num_clients",
                )
            pieces = np.array_split(members, len(holders))
            owner[members] = np.repeat(holders, [len(p) for p in pieces])
        parts = parts_from_owner(owner, self.num_partitions)
        smallest = min(len(p) for p in parts)
        if smallest < min_size:
            raise PartitionError(
                "min_size",
                f"the pathological split's smallest client has {smallest} samples, "
                f"below min_size = {min_size}",
            )
        return parts


class ShardsPartitioner(Partitioner[ShardsParams]):
    """Label-sorted data in ``num_partitions x shards_per_client`` shards, dealt at random."""

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        per_client = self.params.shards_per_client
        num_shards = self.num_partitions * per_client
        if num_shards > len(labels):
            raise PartitionError(
                "shards_per_client",
                f"{self.num_partitions} clients x {per_client} shards need {num_shards} "
                f"samples, the dataset has {len(labels)}",
            )
        rng = np.random.default_rng(self.seed)
        _, codes = np.unique(labels, return_inverse=True)
        shards = np.array_split(_grouped_by_label(codes, rng), num_shards)
        deal = rng.permutation(num_shards).reshape(self.num_partitions, per_client)
        return [np.sort(np.concatenate([shards[s] for s in row])) for row in deal]
