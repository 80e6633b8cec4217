"""Split the training speakers' clips among clients and describe the split."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from partitioners.metrics import client_table, heterogeneity_scores
from simfl import registry
from simfl.config import Scenario
from simfl.data.client_index import ClientIndex
from simfl.data.prepare import PreparedData
from simfl.seeding import derive_seed


@dataclass(frozen=True)
class Federation:
    index_dir: Path
    clients: pd.DataFrame
    scores: dict[str, float]


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


def build_federation(scenario: Scenario, data: PreparedData, cache_dir: Path) -> Federation:
    entry = registry.PARTITIONERS[scenario.partition.kind]
    seed = derive_seed(scenario.scenario.seed, "partition")
    partitioner = entry.factory(scenario.partition, scenario.data.num_clients, seed)
    parts = partitioner.split(data.train.labels, data.train.metadata)
    index_dir = cache_dir / "partitions" / partition_key(scenario)
    ClientIndex.build(
        index_dir,
        parts,
        data.train.rows,
        data.train.labels,
        scenario.data.local_test_fraction,
        scenario.scenario.seed,
    )
    table = client_table(parts, data.train.labels, data.label_names, data.train.metadata)
    scores = heterogeneity_scores(parts, data.train.labels, data.num_classes)
    return Federation(index_dir, table, scores)
