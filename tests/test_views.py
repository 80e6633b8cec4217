"""Tests for simfl.data.views: the 35-class and 12-class label views over the word column."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simfl.data.clip_format import SILENCE_LABEL, SPEECH_COMMANDS_WORDS
from simfl.data.views import (
    COMMAND_WORDS,
    TWELVE_CLASS_NAMES,
    UNKNOWN_LABEL,
    VIEWS,
    apply_view,
)


def speech_commands_like(per_word: int = 40, silence: int = 60, seed: int = 0) -> np.ndarray:
    """A shuffled word column: every word ``per_word`` times plus ``silence`` silence rows."""
    words = [w for w in SPEECH_COMMANDS_WORDS for _ in range(per_word)] + [SILENCE_LABEL] * silence
    return np.random.default_rng(seed).permutation(np.array(words))


def test_views_constant() -> None:
    assert VIEWS == ("35-class", "12-class")


def test_unknown_view_raises_naming_the_allowed_views() -> None:
    with pytest.raises(ValueError, match="35-class.*12-class"):
        apply_view(["yes"], "10-class")


def test_35_class_drops_silence_and_labels_every_word() -> None:
    words = speech_commands_like()
    rows, labels, names = apply_view(words, "35-class")
    assert names == list(SPEECH_COMMANDS_WORDS)
    assert rows.dtype == np.int64 and labels.dtype == np.int64
    assert np.array_equal(rows, np.flatnonzero(words != SILENCE_LABEL))
    assert [names[i] for i in labels] == list(words[rows])


def test_35_class_names_only_the_words_present() -> None:
    rows, labels, names = apply_view(["zero", "bed", SILENCE_LABEL, "bed"], "35-class")
    assert names == ["bed", "zero"]
    assert rows.tolist() == [0, 1, 3] and labels.tolist() == [1, 0, 0]


def test_12_class_label_mapping() -> None:
    words = speech_commands_like()
    rows, labels, names = apply_view(words, "12-class")
    assert names == list(TWELVE_CLASS_NAMES) == [*COMMAND_WORDS, UNKNOWN_LABEL, SILENCE_LABEL]
    for row, label in zip(rows, labels, strict=True):
        word = words[row]
        expected = word if word in COMMAND_WORDS or word == SILENCE_LABEL else UNKNOWN_LABEL
        assert names[label] == expected
    assert np.all(np.diff(rows) > 0)  # original order, no duplicates


def test_12_class_balances_unknown_and_silence_like_an_average_command() -> None:
    words = speech_commands_like(per_word=40, silence=60)
    rows, labels, names = apply_view(words, "12-class")
    counts = Counter(names[i] for i in labels)
    assert all(counts[w] == 40 for w in COMMAND_WORDS)  # every command row is kept
    assert counts[UNKNOWN_LABEL] == 40  # not 25 * 40 = 1000 (~70% of the data)
    assert counts[SILENCE_LABEL] == 40
    unknown_words = Counter(words[r] for r, lab in zip(rows, labels, strict=True) if lab == 10)
    assert len(unknown_words) > 10  # drawn across the non-command words


def test_12_class_keeps_all_silence_when_there_is_little() -> None:
    words = speech_commands_like(per_word=40, silence=7)
    _, labels, names = apply_view(words, "12-class")
    assert Counter(names[i] for i in labels)[SILENCE_LABEL] == 7


def test_12_class_subsample_is_seeded_and_stable() -> None:
    words = speech_commands_like()
    first = apply_view(words, "12-class", seed=5)
    again = apply_view(list(words), "12-class", seed=5)
    other = apply_view(words, "12-class", seed=6)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.sampled_from([*SPEECH_COMMANDS_WORDS, SILENCE_LABEL]), max_size=300),
    st.sampled_from(VIEWS),
    st.integers(0, 2**32 - 1),
)
def test_view_invariants(words: list[str], view: str, seed: int) -> None:
    rows, labels, names = apply_view(words, view, seed=seed)
    assert rows.shape == labels.shape and rows.dtype == labels.dtype == np.int64
    assert np.all(np.diff(rows) > 0) and (len(rows) == 0 or 0 <= rows[0] <= rows[-1] < len(words))
    assert np.all((labels >= 0) & (labels < len(names)))
    kept = Counter(words[r] for r in rows)
    if view == "35-class":
        assert kept == Counter(w for w in words if w != SILENCE_LABEL)
    else:
        assert all(kept[w] == words.count(w) for w in COMMAND_WORDS)
        command_counts = [words.count(w) for w in COMMAND_WORDS if w in words]
        unknown = Counter(names[i] for i in labels)[UNKNOWN_LABEL]
        assert unknown <= max(command_counts, default=len(words))
