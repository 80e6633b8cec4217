"""Label shift with a fixed structure: pathological k-labels-per-client and label-sorted shards.

Flower Datasets has ``PathologicalPartitioner`` and ``ShardPartitioner``; both may leave samples
out (classes no partition drew; an incomplete last shard). Ours place every sample exactly once:
the pathological split deals the shuffled labels round-robin so that every label has a holder
and every client exactly ``k`` distinct labels (each label's samples shared equally among its
holders), and shards are near-equal cuts of the label-sorted data (McMahan et al., 2017).
Infeasible requests are ScenarioErrors naming the key.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from partitioners.base import Partitioner, parts_from_owner
from simfl.errors import ScenarioError


class PathologicalConfig(BaseModel):
    """``[partition] kind = "pathological"``: every client holds exactly ``k`` labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["pathological"]
    k: int = Field(default=2, ge=1)
    min_size: int = Field(default=1, ge=0)


class ShardsConfig(BaseModel):
    """``[partition] kind = "shards"``: label-sorted data cut into shards, ``shards_per_client``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["shards"]
    shards_per_client: int = Field(default=2, ge=1)


def _grouped_by_label(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shuffled = rng.permutation(len(codes))
    return shuffled[np.argsort(codes[shuffled], kind="stable")]


class PathologicalPartitioner(Partitioner):
    def __init__(
        self, num_partitions: int, k: int, seed: int, min_size: int = 1, partition_by="label"
    ) -> None:
        super().__init__(num_partitions, seed, partition_by)
        self.k = k
        self.min_size = min_size

    @classmethod
    def from_config(cls, config: PathologicalConfig, num_partitions: int, seed: int):
        return cls(num_partitions, config.k, seed, config.min_size)

    def client_labels(self, num_labels: int, rng: np.random.Generator) -> np.ndarray:
        """[clients, k] label codes: shuffled labels dealt round-robin, k consecutive each."""
        if self.k > num_labels:
            raise ScenarioError(
                f"key 'partition.k': {self.k} labels per client, but the data has "
                f"{num_labels} labels; allowed 1..{num_labels}"
            )
        if self.num_partitions * self.k < num_labels:
            raise ScenarioError(
                f"key 'partition.k': {self.num_partitions} clients x k={self.k} labels cannot "
                f"hold all {num_labels} labels; allowed k >= "
                f"{-(-num_labels // self.num_partitions)} (or more clients)"
            )
        slots = np.arange(self.num_partitions * self.k).reshape(self.num_partitions, self.k)
        return rng.permutation(num_labels)[slots % num_labels]

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        self.check_feasible(len(labels), max(self.min_size, self.k))
        rng = np.random.default_rng(self.seed)
        _, codes = np.unique(labels, return_inverse=True)
        held = self.client_labels(int(codes.max()) + 1 if len(codes) else 0, rng)
        owner = np.empty(len(labels), dtype=np.int64)
        grouped = _grouped_by_label(codes, rng)
        bounds = np.cumsum(np.bincount(codes))
        for label, members in enumerate(np.split(grouped, bounds[:-1])):
            holders = np.flatnonzero((held == label).any(axis=1))
            if len(members) < len(holders):
                raise ScenarioError(
                    f"key 'partition.k': label {label} has {len(members)} samples for "
                    f"{len(holders)} clients holding it; lower k or data.num_clients"
                )
            pieces = np.array_split(members, len(holders))
            owner[members] = np.repeat(holders, [len(p) for p in pieces])
        parts = parts_from_owner(owner, self.num_partitions)
        smallest = min(len(p) for p in parts)
        if smallest < self.min_size:
            raise ScenarioError(
                f"key 'partition.min_size': the pathological split's smallest client has "
                f"{smallest} samples, below min_size = {self.min_size}"
            )
        return parts


class ShardsPartitioner(Partitioner):
    def __init__(
        self, num_partitions: int, shards_per_client: int, seed: int, partition_by="label"
    ) -> None:
        super().__init__(num_partitions, seed, partition_by)
        self.shards_per_client = shards_per_client

    @classmethod
    def from_config(cls, config: ShardsConfig, num_partitions: int, seed: int):
        return cls(num_partitions, config.shards_per_client, seed)

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        num_shards = self.num_partitions * self.shards_per_client
        if num_shards > len(labels):
            raise ScenarioError(
                f"key 'partition.shards_per_client': {self.num_partitions} clients x "
                f"{self.shards_per_client} shards need {num_shards} samples, "
                f"the dataset has {len(labels)}"
            )
        rng = np.random.default_rng(self.seed)
        _, codes = np.unique(labels, return_inverse=True)
        shards = np.array_split(_grouped_by_label(codes, rng), num_shards)
        deal = rng.permutation(num_shards).reshape(self.num_partitions, self.shards_per_client)
        return [np.sort(np.concatenate([shards[s] for s in row])) for row in deal]
