"""Whisper's own normalized log-mels, from transformers' ``WhisperFeatureExtractor``.

What this module adds to the extractor: it is built offline (no hub download), once per mel
count (building its filterbank is slow), and run on short clips: ``settings.frames`` 10 ms
frames instead of Whisper's 30 s window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from simfl.data.logmel import to_float_audio
from simfl.data.settings import FeatureSettings

_EXTRACTORS: dict[int, Any] = {}


def whisper_log_mel(audio: torch.Tensor, settings: FeatureSettings) -> np.ndarray:
    """Whisper's normalized log-mels of ``settings.frames`` frames: [B, T] -> [B, n_mels, frames].

    The extractor pads or cuts every clip to ``frames`` hops (not 30 s): Whisper's log-mels are
    clamped to 8 below the clip's maximum, which silence padding never raises, so the frames
    equal the first ``frames`` of the 30 s features (checked in the tests).
    """
    extractor = _whisper_extractor(settings.n_mels)
    wave = to_float_audio(audio).numpy()
    out = extractor(
        list(wave),
        sampling_rate=settings.sample_rate,
        max_length=int(settings.frames) * settings.hop_length,  # type: ignore[arg-type]
        return_tensors="np",
    )["input_features"]
    return np.asarray(out, dtype=np.float32)


def _whisper_extractor(n_mels: int) -> Any:
    """One offline WhisperFeatureExtractor per mel count, kept for the process's lifetime."""
    if n_mels not in _EXTRACTORS:
        from transformers import WhisperFeatureExtractor

        _EXTRACTORS[n_mels] = WhisperFeatureExtractor(feature_size=n_mels)
    return _EXTRACTORS[n_mels]
