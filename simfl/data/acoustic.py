"""Acoustic channel simulation: a client's recording ``Condition`` applied to its audio.

``partitioners.feature_shift`` decides each client's channel (SNR, band edges, gain, speed,
reverb); this module is the signal processing that realises it on [batch, time] audio, before
feature extraction (simfl/data/conditions.py). Built on scipy.signal (Butterworth SOS filters,
polyphase resampling, FFT convolution); what it adds is the exact bookkeeping: noise scaled to
each row's measured power so the SNR holds exactly, lengths kept, reverb at the dry level, and a
neutral condition returning the input object itself (severity 0 is bit-identical).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal

if TYPE_CHECKING:
    from partitioners.feature_shift import Condition

FILTER_ORDER = 6


def shape(wave: np.ndarray, cond: Condition, sample_rate: int, rng: np.random.Generator):
    """The deterministic channel (speed, reverb, band-pass, gain) on float [b, T] audio."""
    out = wave
    if cond.speed != 1.0:
        out = change_speed(out, cond.speed)
    if cond.rt60_s:
        out = reverberate(out, cond.rt60_s, sample_rate, rng)
    if cond.highpass_hz or cond.lowpass_hz:
        out = band_pass(out, cond.highpass_hz, cond.lowpass_hz, sample_rate)
    if cond.gain_db:
        out = out * 10 ** (cond.gain_db / 20)
    return out


def apply_condition(
    audio: np.ndarray, cond: Condition, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """[b, T] int16 or float audio through ``cond``; float32 in int16 full scale = 1.0.

    A neutral condition returns ``audio`` itself, untouched (severity 0 is bit-identical).
    """
    if cond.is_neutral:
        return audio
    wave = _to_float(audio)
    shaped = shape(wave, cond, sample_rate, rng)
    if cond.snr_db is not None:
        shaped = shaped + noise_at_snr(shaped, cond.snr_db, rng)
    return shaped.astype(np.float32)


def _to_float(audio: np.ndarray) -> np.ndarray:
    if audio.dtype == np.int16:
        return audio.astype(np.float64) / 32768.0
    return audio.astype(np.float64)


def noise_at_snr(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise whose power is each row's power divided by 10^(snr/10), exactly."""
    noise = rng.standard_normal(wave.shape)
    noise /= np.sqrt(np.mean(noise**2, axis=1, keepdims=True))
    power = np.mean(wave**2, axis=1, keepdims=True)
    return noise * np.sqrt(power / 10 ** (snr_db / 10))


def band_pass(
    wave: np.ndarray, low_hz: float | None, high_hz: float | None, sample_rate: int
) -> np.ndarray:
    """Butterworth high-pass at ``low_hz`` and low-pass at ``high_hz`` (-3 dB at each)."""
    out = wave
    if low_hz:
        sos = signal.butter(FILTER_ORDER, low_hz, "highpass", fs=sample_rate, output="sos")
        out = signal.sosfilt(sos, out, axis=1)
    if high_hz:
        sos = signal.butter(FILTER_ORDER, high_hz, "lowpass", fs=sample_rate, output="sos")
        out = signal.sosfilt(sos, out, axis=1)
    return out


def change_speed(wave: np.ndarray, speed: float) -> np.ndarray:
    """Play ``speed`` times faster (pitch follows), centre-cropped or zero-padded to length."""
    ratio = Fraction(1.0 / speed).limit_denominator(64)
    out = signal.resample_poly(wave, ratio.numerator, ratio.denominator, axis=1)
    length = wave.shape[1]
    if out.shape[1] >= length:
        start = (out.shape[1] - length) // 2
        return out[:, start : start + length]
    pad = length - out.shape[1]
    return np.pad(out, ((0, 0), (pad // 2, pad - pad // 2)))


def reverberate(
    wave: np.ndarray, rt60_s: float, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Convolve with a synthetic room (exponentially decaying noise tail), same RMS."""
    t = np.arange(max(int(rt60_s * sample_rate), 1)) / sample_rate
    rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60_s)
    rir[0] = 1.0
    out = signal.fftconvolve(wave, rir[None, :], axes=1)[:, : wave.shape[1]]
    scale = np.sqrt(
        np.mean(wave**2, axis=1, keepdims=True) / (np.mean(out**2, axis=1) + 1e-20)[:, None]
    )
    return out * scale
