"""Split the training speakers' clips among clients and describe the split."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from simfl import registry
from simfl.atomic import publish_directory, write_atomically
from simfl.config import Scenario
from simfl.data.client_index import ClientIndex
from simfl.data.feature_store import FeatureStore
from simfl.data.prepare import PreparedData, StageProgress
from simfl.seeding import derive_seed


@dataclass(frozen=True)
class Federation:
    index_dir: Path
    clients: pd.DataFrame
    scores: dict[str, float]
    train_store: Path  # the clean train features, or the acoustically conditioned ones
    figure: Path  # the partition figure, drawn once per split and version of the plotting code


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
        from simfl.data.conditions import conditioned_train_store, owners_by_store_row  # scipy

        owner = owners_by_store_row(len(FeatureStore.open(train_store)), data.train.rows, parts)
        noise_seed = derive_seed(scenario.scenario.seed, "acoustic")
        train_store = conditioned_train_store(
            scenario.data,
            data.source["train"],
            cache_dir,
            owner,
            conditions,
            noise_seed,
            key,
            progress,
        )
    summary_dir = index_dir.parent / f"{key}-summary-{scenario.data.features.cache_key()}"
    if not (summary_dir / SUMMARY_FILES[-1]).is_file():
        publish_directory(
            summary_dir,
            lambda staging: _describe(staging, data, parts, conditions, train_store),
        )
    clients = pd.read_parquet(summary_dir / "clients.parquet")
    scores = json.loads((summary_dir / "scores.json").read_text())
    figure = partition_figure(summary_dir, clients, scores)
    return Federation(index_dir, clients, scores, train_store, figure)


#: What describes a split, cached beside its client index (sweep cells that differ only in
#: strategy or training reuse it: no feature pass over the store per cell).
SUMMARY_FILES = ("clients.parquet", "scores.json")


def partition_figure(summary_dir: Path, clients: pd.DataFrame, scores: dict[str, float]) -> Path:
    """The split's figure, drawn from its cached table by the plotting code of this checkout.

    Named by a digest of ``partitioners/plots.py``, so a cache described by an older version
    of the plotting code gets a new figure, not the old one, and every later run reuses it.
    """
    import importlib.util

    spec = importlib.util.find_spec("partitioners.plots")
    assert spec is not None and spec.origin is not None
    digest = hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:12]
    figure = summary_dir / f"partition-{digest}.png"
    if not figure.is_file():
        from partitioners.plots import plot_partition  # matplotlib: only when drawing

        # Concurrent cells may both draw; either copy is whole. A full disk is one line.
        write_atomically(figure, lambda temporary: plot_partition(clients, scores, temporary))
    return figure


def _describe(staging: Path, data: PreparedData, parts, conditions, train_store: Path) -> None:
    """Per-client statistics and heterogeneity scores, written into ``staging``.

    Its imports (scipy) are made here: a run of a split described before (any rerun, every
    sweep cell that varies only training) never needs them."""
    from partitioners.feature_shift import conditions_table
    from partitioners.metrics import client_table, feature_distances, heterogeneity_scores
    from simfl.data.conditions import feature_row_means

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
    table.to_parquet(staging / "clients.parquet", index=False)
    (staging / "scores.json").write_text(json.dumps(scores))
