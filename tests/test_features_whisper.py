"""Whisper log-mel features: offline extractor, short windows, cache keys, memory-mapped store."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from simfl.data.feature_store import FeatureStore
from simfl.data.settings import FeatureSettings
from simfl.data.whisper_features import whisper_log_mel


def clips(n: int = 3, samples: int = 16_000) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(samples) / 16_000
    tone = np.sin(2 * np.pi * 440 * t) * (t > 0.3) * (t < 0.7)
    return ((tone + 0.05 * rng.standard_normal((n, samples))) * 8000).astype(np.int16)


def test_whisper_kind_takes_whisper_defaults():
    s = FeatureSettings(kind="whisper")
    assert (s.n_mels, s.n_fft, s.hop_length, s.frames) == (80, 400, 160, 100)
    assert s.num_frames(123_456) == 100


def test_cache_key_includes_kind_and_frames_but_log_mel_keys_are_unchanged():
    assert FeatureSettings().cache_key() == "4c7849a33eccca60"  # pinned: caches keep their key
    whisper = FeatureSettings(kind="whisper")
    assert whisper.cache_key() != FeatureSettings().cache_key()
    assert whisper.cache_key() != FeatureSettings(kind="whisper", frames=300).cache_key()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "whisper", "n_fft": 512}, "fixes n_fft"),
        ({"kind": "whisper", "n_mels": 64}, "80 or 128"),
        ({"frames": 100}, 'kind = "whisper" only'),
        ({"kind": "mfcc"}, "log-mel"),
    ],
)
def test_bad_whisper_settings_are_refused(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        FeatureSettings(**kwargs)


def test_short_features_equal_the_start_of_whispers_30_s_features():
    from transformers import WhisperFeatureExtractor

    audio = clips()
    short = whisper_log_mel(torch.from_numpy(audio), FeatureSettings(kind="whisper"))
    full = WhisperFeatureExtractor(feature_size=80)(
        list(audio.astype(np.float32) / 32768.0), sampling_rate=16_000, return_tensors="np"
    )["input_features"]
    assert short.shape == (3, 80, 100) and full.shape == (3, 80, 3000)
    np.testing.assert_allclose(short[..., :99], full[..., :99], atol=1e-5)


def test_store_caches_whisper_features(tmp_path):
    settings = FeatureSettings(kind="whisper", frames=50, dtype="float32")
    audio = clips(5)
    store = FeatureStore.build([audio[:2], audio[2:]], num_rows=5, settings=settings,
                               directory=tmp_path / "store", compute_batch_size=2)  # fmt: skip
    assert store.shape == (5, 80, 50)
    expected = whisper_log_mel(torch.from_numpy(audio), settings)
    np.testing.assert_allclose(store.read([4, 0]), expected[[4, 0]], atol=1e-6)
    again = FeatureStore.build(
        iter(()), num_rows=5, settings=settings, directory=tmp_path / "store"
    )
    assert again.settings == settings  # cache hit, nothing recomputed
