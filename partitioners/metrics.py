"""Per-client statistics and heterogeneity scores of a split, saved with every run."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon


def label_histograms(parts: list[np.ndarray], labels: np.ndarray, num_classes: int) -> np.ndarray:
    """[clients, classes] sample counts."""
    return np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])


def client_table(
    parts: list[np.ndarray],
    labels: np.ndarray,
    label_names: list[str],
    metadata: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per client: size, distinct labels and speakers, and the label histogram."""
    hist = label_histograms(parts, labels, len(label_names))
    table = pd.DataFrame({"client": np.arange(len(parts)), "size": [len(p) for p in parts]})
    table["num_labels"] = (hist > 0).sum(axis=1)
    for column in ("speaker_id", "accent"):
        if metadata is not None and column in metadata:
            values = metadata[column].to_numpy()
            table[f"num_{column.removesuffix('_id')}s"] = [len(np.unique(values[p])) for p in parts]
    for index, name in enumerate(label_names):
        table[f"label:{name}"] = hist[:, index]
    return table


def heterogeneity_scores(
    parts: list[np.ndarray], labels: np.ndarray, num_classes: int
) -> dict[str, float]:
    """Mean Jensen-Shannon distance to the global label mix, effective labels, size spread."""
    hist = label_histograms(parts, labels, num_classes).astype(np.float64)
    sizes = hist.sum(axis=1)
    global_mix = hist.sum(axis=0) / hist.sum()
    client_mix = hist / np.maximum(sizes[:, None], 1.0)
    js = [jensenshannon(mix, global_mix, base=2) for mix in client_mix]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(client_mix > 0, client_mix * np.log(client_mix), 0), axis=1)
    return {
        "label_js_distance_mean": float(np.mean(js)),
        "effective_labels_mean": float(np.mean(np.exp(entropy))),
        "size_mean": float(sizes.mean()),
        "size_min": float(sizes.min()),
        "size_max": float(sizes.max()),
        "size_cv": float(sizes.std() / sizes.mean()) if sizes.mean() else 0.0,
    }
