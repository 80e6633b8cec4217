"""Split the training speakers' clips among clients and describe the split."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from partitioners.feature_shift import conditions_table
from partitioners.metrics import client_table, feature_distances, heterogeneity_scores
from simfl import registry
from simfl.config import Scenario
from simfl.data.client_index import ClientIndex
from simfl.data.conditions import (
    conditioned_train_store,
    feature_row_means,
    owners_by_store_row,
)
from simfl.data.feature_store import FeatureStore
from simfl.data.prepare import PreparedData, StageProgress
from simfl.seeding import derive_seed


@dataclass(frozen=True)
class Federation:
    index_dir: Path
    clients: pd.DataFrame
    scores: dict[str, float]
    train_store: Path  # the clean train features, or the acoustically conditioned ones


def partition_key(scenario: Scenario) -> str:
    identity = {
        "source": scenario.data.source_key(),
        "view": scenario.data.view,
        "num_clients": scenario.data.num_clients,
        "local_test_fraction": scenario.data.local_test_fraction,
        "partition": scenario.partition.model_dump(mode="json"),
        "seed": scenario.scenario.seed,
    }
    blob = json.dumps(identity, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def build_federation(
    scenario: Scenario,
    data: PreparedData,
    cache_dir: Path,
    progress: StageProgress | None = None,
) -> Federation:
    entry = registry.PARTITIONERS[scenario.partition.kind]
    seed = derive_seed(scenario.scenario.seed, "partition")
    partitioner = entry.load()(scenario.data.num_clients, scenario.partition, seed)
    parts = partitioner.split(data.train.labels, data.train.metadata)
    key = partition_key(scenario)
    index_dir = cache_dir / "partitions" / key
    ClientIndex.build(
        index_dir,
        parts,
        data.train.rows,
        data.train.labels,
        scenario.data.local_test_fraction,
        scenario.scenario.seed,
    )
    conditions = partitioner.client_conditions()
    train_store = data.train.store_dir
    if conditions is not None and not all(c.is_neutral for c in conditions):
        owner = owners_by_store_row(len(FeatureStore.open(train_store)), data.train.rows, parts)
        noise_seed = derive_seed(scenario.scenario.seed, "acoustic")
        train_store = conditioned_train_store(
            scenario.data, data.source["train"], cache_dir, owner, conditions, noise_seed, key,
            progress,
        )
    distance = feature_distances(feature_row_means(train_store, data.train.rows), parts)
    table = client_table(
        parts,
        data.train.labels,
        data.label_names,
        data.train.metadata,
        conditions_table(conditions) if conditions is not None else None,
        distance,
    )
    scores = heterogeneity_scores(parts, data.train.labels, data.num_classes, distance)
    return Federation(index_dir, table, scores, train_store)
