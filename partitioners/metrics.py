"""Per-client statistics and heterogeneity scores of a split, saved with every run.

Scores: mean Jensen-Shannon and Hellinger distances between each client's label mix and the
global one (0 = IID, 1 = disjoint), the effective number of labels per client (exp of the
label entropy), size spread (coefficient of variation, Gini) and, given features, a
feature-shift score: the RMS distance between each client's mean log-mel vector and the
global mean (log-mel units; label mix moves it too, acoustic conditions move it most).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

METADATA_COUNTS = (
    ("speaker_id", "num_speakers"),
    ("accent", "num_accents"),
    ("voice", "num_voices"),
)


def label_histograms(parts: list[np.ndarray], labels: np.ndarray, num_classes: int) -> np.ndarray:
    """[clients, classes] sample counts."""
    return np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])


def _mixes(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hist = hist.astype(np.float64)
    global_mix = hist.sum(axis=0) / max(hist.sum(), 1.0)
    return hist / np.maximum(hist.sum(axis=1, keepdims=True), 1.0), global_mix


def label_distances(hist: np.ndarray) -> dict[str, np.ndarray]:
    """Per client: JS and Hellinger distance to the global mix, effective number of labels."""
    client_mix, global_mix = _mixes(hist)
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty client has no mix
        js = np.array([jensenshannon(mix, global_mix, base=2) for mix in client_mix])
    hellinger = np.sqrt(0.5 * ((np.sqrt(client_mix) - np.sqrt(global_mix)) ** 2).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(client_mix > 0, client_mix * np.log(client_mix), 0.0).sum(axis=1)
    return {
        "label_js": np.nan_to_num(js),
        "label_hellinger": hellinger,
        "effective_labels": np.exp(entropy),
    }


def gini(values: np.ndarray) -> float:
    """Gini coefficient (0 = all equal, -> 1 = one client holds everything)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    if x.sum() == 0:
        return 0.0
    ranks = np.arange(1, len(x) + 1)
    return float((2 * ranks - len(x) - 1) @ x / (len(x) * x.sum()))


def feature_distances(row_means: np.ndarray, parts: list[np.ndarray]) -> np.ndarray:
    """Per client: RMS distance of its mean feature vector to the global mean.

    ``row_means`` is [samples, dims] (e.g. each clip's log-mel averaged over time).
    """
    global_mean = row_means.mean(axis=0)
    means = np.stack([row_means[p].mean(axis=0) if len(p) else global_mean for p in parts])
    return np.sqrt(((means - global_mean) ** 2).mean(axis=1))


def client_table(
    parts: list[np.ndarray],
    labels: np.ndarray,
    label_names: list[str],
    metadata: pd.DataFrame | None = None,
    conditions: pd.DataFrame | None = None,
    feature_distance: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per client: size, label statistics, speakers/accents, condition, histogram."""
    hist = label_histograms(parts, labels, len(label_names))
    table = pd.DataFrame({"client": np.arange(len(parts)), "size": [len(p) for p in parts]})
    table["num_labels"] = (hist > 0).sum(axis=1)
    for name, values in label_distances(hist).items():
        table[name] = values
    for column, count_name in METADATA_COUNTS:
        if metadata is not None and column in metadata:
            values = metadata[column].to_numpy()
            table[count_name] = [len(np.unique(values[p])) for p in parts]
    if metadata is not None and "accent" in metadata:
        accents = metadata["accent"].to_numpy()
        table["main_accent"] = [_most_common(accents[p]) for p in parts]
    if feature_distance is not None:
        table["feature_distance"] = feature_distance
    if conditions is not None:
        for column in conditions:
            table[f"cond:{column}"] = conditions[column].to_numpy()
    for index, name in enumerate(label_names):
        table[f"label:{name}"] = hist[:, index]
    return table


def _most_common(values: np.ndarray) -> str:
    if not len(values):
        return ""
    uniques, counts = np.unique(values, return_counts=True)
    return str(uniques[np.argmax(counts)])


def heterogeneity_scores(
    parts: list[np.ndarray],
    labels: np.ndarray,
    num_classes: int,
    feature_distance: np.ndarray | None = None,
) -> dict[str, float]:
    """Whole-split scores (see the module docstring)."""
    hist = label_histograms(parts, labels, num_classes)
    distances = label_distances(hist)
    sizes = hist.sum(axis=1).astype(np.float64)
    scores = {
        "label_js_distance_mean": float(distances["label_js"].mean()),
        "label_hellinger_mean": float(distances["label_hellinger"].mean()),
        "effective_labels_mean": float(distances["effective_labels"].mean()),
        "size_mean": float(sizes.mean()),
        "size_min": float(sizes.min()),
        "size_max": float(sizes.max()),
        "size_cv": float(sizes.std() / sizes.mean()) if sizes.mean() else 0.0,
        "size_gini": gini(sizes),
    }
    if feature_distance is not None:
        scores["feature_shift_score"] = float(np.mean(feature_distance))
    return scores
