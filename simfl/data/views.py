"""Label views: which rows of a keyword dataset are kept and what class each one gets.

The same recorded words support several benchmarks. "35-class" classifies every word;
"12-class" is the standard Speech Commands task (ten commands + unknown + silence) where, as in
TensorFlow's ``silence_percentage``/``unknown_percentage`` setup, the unknown and silence classes
are subsampled to about the size of an average command instead of dominating the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simfl.data.clip_format import SILENCE_LABEL, SPEECH_COMMANDS_WORDS
from simfl.data.settings import TRANSCRIPT_VIEW, VIEWS

UNKNOWN_LABEL = "_unknown_"
COMMAND_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
TWELVE_CLASS_NAMES = (*COMMAND_WORDS, UNKNOWN_LABEL, SILENCE_LABEL)

_SUBSAMPLE_SALT = 0x12C1A55  # keeps this draw independent of other uses of the same seed

ViewResult = tuple[np.ndarray, np.ndarray, list[str]]


def apply_view(words: Sequence[str] | np.ndarray, view: str, seed: int = 0) -> ViewResult:
    """(kept row indices, labels of the kept rows, label names) for ``view``.

    Rows are returned in their original order; the result depends only on ``words``,
    ``view`` and ``seed``.
    """
    names = np.asarray(words, dtype=str)
    if view == "35-class":
        return _all_words(names)
    if view == "12-class":
        return _twelve_class(names, seed)
    if view == TRANSCRIPT_VIEW:
        label_names = sorted(set(names.tolist()))
        lookup = {text: i for i, text in enumerate(label_names)}
        labels = np.array([lookup[text] for text in names], dtype=np.int64)
        return np.arange(len(names), dtype=np.int64), labels, label_names
    raise ValueError(f"unknown view {view!r}; allowed views: {', '.join(VIEWS)}")


def _all_words(words: np.ndarray) -> ViewResult:
    """Every word is its own class; silence rows are dropped."""
    present = set(words.tolist()) - {SILENCE_LABEL}
    order = {w: i for i, w in enumerate(SPEECH_COMMANDS_WORDS)}
    label_names = sorted(present, key=lambda w: (order.get(w, len(order)), w))
    rows = np.flatnonzero(words != SILENCE_LABEL).astype(np.int64)
    lookup = {w: i for i, w in enumerate(label_names)}
    labels = np.array([lookup[w] for w in words[rows]], dtype=np.int64)
    return rows, labels, label_names


def _twelve_class(words: np.ndarray, seed: int) -> ViewResult:
    """Ten commands, plus unknown and silence each subsampled to an average command's size."""
    is_command = np.isin(words, COMMAND_WORDS)
    command_counts = [int(np.sum(words == w)) for w in COMMAND_WORDS]
    present_counts = [c for c in command_counts if c > 0]
    target = round(float(np.mean(present_counts))) if present_counts else len(words)
    unknown = _subsample(np.flatnonzero(~is_command & (words != SILENCE_LABEL)), target, seed, 0)
    silence = _subsample(np.flatnonzero(words == SILENCE_LABEL), target, seed, 1)
    rows = np.sort(np.concatenate([np.flatnonzero(is_command), unknown, silence])).astype(np.int64)
    lookup = {w: i for i, w in enumerate(TWELVE_CLASS_NAMES)}
    unknown_id = lookup[UNKNOWN_LABEL]
    labels = np.array([lookup.get(w, unknown_id) for w in words[rows]], dtype=np.int64)
    return rows, labels, list(TWELVE_CLASS_NAMES)


def _subsample(candidates: np.ndarray, target: int, seed: int, stream: int) -> np.ndarray:
    """``target`` of ``candidates`` drawn without replacement (all of them if fewer).

    Each class draws from its own seeded stream, so one class's draw never shifts another's.
    """
    if len(candidates) <= target:
        return candidates
    rng = np.random.default_rng([seed, _SUBSAMPLE_SALT, stream])
    return rng.choice(candidates, size=target, replace=False)
