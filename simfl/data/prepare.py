"""From ``[data]`` to what a run needs: cached feature stores, view labels and speaker metadata."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from simfl import registry
from simfl.data.dataset_audio import iter_dataset_audio
from simfl.data.feature_store import FeatureStore
from simfl.data.views import apply_view
from simfl.schema.data import DataBase

StageProgress = Callable[[str, int, int], None]
METADATA_COLUMNS = ("speaker_id", "accent", "voice")


@dataclass(frozen=True)
class SplitData:
    """One split through the label view: store rows kept, their labels and metadata."""

    store_dir: Path
    rows: np.ndarray
    labels: np.ndarray
    metadata: pd.DataFrame


@dataclass(frozen=True)
class PreparedData:
    """The source as loaded (handed on, never reloaded), its feature stores and label view."""

    source: datasets.DatasetDict
    train: SplitData
    test: SplitData
    label_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


def load_source(config: DataBase, cache_dir: Path, progress: StageProgress | None = None):
    """The dataset as a DatasetDict (built on first use, e.g. synthesized)."""
    entry = registry.DATASETS[config.dataset]  # type: ignore[attr-defined]
    report = (lambda done, total: progress("dataset", done, total)) if progress else None
    return entry.load()(config, cache_dir, progress=report)


def prepare_data(
    config: DataBase, cache_dir: Path, progress: StageProgress | None = None
) -> PreparedData:
    dataset = load_source(config, cache_dir, progress)
    train, names = _prepare_split(config, dataset["train"], "train", cache_dir, progress)
    test, test_names = _prepare_split(config, dataset["test"], "test", cache_dir, progress)
    assert names == test_names, "views must give both splits the same label names"
    return PreparedData(source=dataset, train=train, test=test, label_names=names)


def _prepare_split(
    config: DataBase,
    split: datasets.Dataset,
    name: str,
    cache_dir: Path,
    progress: StageProgress | None,
) -> tuple[SplitData, list[str]]:
    store_dir = (
        cache_dir / "features" / f"{config.source_key()}-{name}-{config.features.cache_key()}"
    )
    report = (lambda done, total: progress(f"features:{name}", done, total)) if progress else None
    FeatureStore.build(  # keyed by the source's settings: a regenerated dataset is bit-identical
        iter_dataset_audio(split),
        num_rows=len(split),
        settings=config.features,
        directory=store_dir,
        source_fingerprint=f"{config.source_key()}:{name}",
        progress=report,
    )
    # The column read as one batch: iterating datasets' lazy Column decodes row by row (each
    # time NumPy walks it), far slower for the same values.
    rows, labels, names = apply_view(np.asarray(split["word"][:]), config.view)
    columns = [c for c in METADATA_COLUMNS if c in split.column_names]
    metadata = split.select_columns(columns).to_pandas().iloc[rows].reset_index(drop=True)
    return SplitData(store_dir, np.asarray(rows), np.asarray(labels), metadata), list(names)
