"""Reading real recordings into simfl's clip format: int16, mono, 16 kHz, exactly one second.

Why soundfile: it reads WAV/FLAC/OGG through libsndfile (bundled in its wheel), so real datasets
load without torchcodec or FFmpeg, which ``datasets`` 4 needs to decode its ``Audio`` feature.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import soundfile

from simfl.data.clip_format import CLIP_SAMPLES, SAMPLE_RATE
from simfl.errors import SimflError


class AudioReadError(SimflError):
    """A file that should hold audio cannot be decoded (names the file)."""


def read_audio(source: str | Path | bytes, name: str | None = None) -> tuple[np.ndarray, int]:
    """Decode a file path or encoded bytes to (float64 mono samples in [-1, 1], sample rate)."""
    label = name or (str(source) if not isinstance(source, bytes) else "<audio bytes>")
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        wave, rate = soundfile.read(handle, dtype="float64", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioReadError(f"{label}: cannot decode audio ({err})") from None
    return wave.mean(axis=1), int(rate)


def resample(wave: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling to ``target`` Hz (a no-op at the target rate)."""
    if rate == target:
        return wave
    from scipy.signal import resample_poly

    common = math.gcd(rate, target)
    return resample_poly(wave, target // common, rate // common)


def fit_clip(wave: np.ndarray, samples: int = CLIP_SAMPLES) -> np.ndarray:
    """First ``samples`` samples, zero-padded at the end (as TensorFlow's Speech Commands input)."""
    if len(wave) >= samples:
        return wave[:samples]
    return np.pad(wave, (0, samples - len(wave)))


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] -> int16 with soundfile's 1/32768 scale, so 16-bit files stay bit-exact."""
    return np.clip(np.round(wave * 32768.0), -32768, 32767).astype(np.int16)


def load_clip(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """A recording as one int16 clip of CLIP_SAMPLES at SAMPLE_RATE."""
    wave, rate = read_audio(source, name)
    return to_pcm16(fit_clip(resample(wave, rate)))


def load_recording(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """A whole recording (e.g. background noise) as float64 at SAMPLE_RATE."""
    wave, rate = read_audio(source, name)
    return resample(wave, rate)
