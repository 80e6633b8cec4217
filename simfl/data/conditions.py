"""Feature shift in the data pipeline: a train feature store recorded through each client's channel.

Each train clip is passed through its owner client's ``Condition`` (drawn by
``partitioners.feature_shift``, applied by ``simfl.data.acoustic``) before the log-mel features
are computed, once per (dataset, feature settings, partition); clients then read it like the
clean store, so training does no extra work per round. The noise of client ``c`` in the batch
starting at row ``r`` is seeded by (seed, "acoustic-noise", c, r): the store is bit-identical on
every build.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import datasets
import numpy as np

from partitioners.feature_shift import Condition
from simfl.data.acoustic import apply_condition
from simfl.data.dataset_audio import iter_dataset_audio
from simfl.data.feature_store import FeatureStore
from simfl.data.logmel import INT16_SCALE
from simfl.data.prepare import StageProgress
from simfl.schema.data import DataBase
from simfl.seeding import rng_for

BATCH_ROWS = 512


def owners_by_store_row(num_rows: int, store_rows: np.ndarray, parts: list[np.ndarray]):
    """Client id of every row of the train store (-1 for rows the label view dropped)."""
    owner = np.full(num_rows, -1, dtype=np.int64)
    for client, part in enumerate(parts):
        owner[store_rows[part]] = client
    return owner


def conditioned_train_store(
    config: DataBase,
    split: datasets.Dataset,
    cache_dir: Path,
    owner: np.ndarray,
    conditions: list[Condition],
    seed: int,
    partition_key: str,
    progress: StageProgress | None = None,
) -> Path:
    """Build (or reuse) the conditioned train store from the loaded ``split``; its directory."""
    name = f"{config.source_key()}-train-{config.features.cache_key()}-acoustic-{partition_key}"
    directory = cache_dir / "features" / name
    if directory.exists():
        return FeatureStore.open(directory).directory
    report = (lambda done, total: progress("features:acoustic", done, total)) if progress else None
    FeatureStore.build(
        _conditioned_batches(split, owner, conditions, seed, config.features.sample_rate),
        num_rows=len(split),
        settings=config.features,
        directory=directory,
        source_fingerprint=f"{config.source_key()}:train:acoustic:{partition_key}",
        compute_batch_size=BATCH_ROWS,
        progress=report,
    )
    return directory


def _conditioned_batches(
    split, owner: np.ndarray, conditions: list[Condition], seed: int, sample_rate: int
) -> Iterator[np.ndarray]:
    start = 0
    for batch in iter_dataset_audio(split, batch_size=BATCH_ROWS):
        out = batch.astype(np.float32) * np.float32(INT16_SCALE)  # exactly the clean scaling
        owners = owner[start : start + len(batch)]
        for client in np.unique(owners[owners >= 0]):
            rows = owners == client
            clean = batch[rows]
            rng = rng_for(seed, "acoustic-noise", int(client), start)
            shaped = apply_condition(clean, conditions[client], sample_rate, rng)
            if shaped is not clean:  # a neutral condition leaves the clean scaling in place
                out[rows] = shaped
        start += len(batch)
        yield out


def feature_row_means(store_dir: Path, rows: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """[len(rows), n_mels]: each clip's log-mel averaged over time (for feature-shift scores)."""
    store = FeatureStore.open(store_dir)
    pieces = [store.read(rows[i : i + chunk]).mean(axis=2) for i in range(0, len(rows), chunk)]
    return np.concatenate(pieces) if pieces else np.zeros((0, store.shape[1]))
