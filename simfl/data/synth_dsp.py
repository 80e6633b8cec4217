"""Signal processing for synthesized speech: from eSpeak's 22.05 kHz output to a noisy clip.

Resampling, silence trimming, a per-speaker "microphone" tilt, coloured background noise with
optional mains hum, and mixing at a drawn SNR into int16. Every random draw comes from the
generator passed in, so a clip depends only on its seeded generator.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from simfl.data.clip_format import CLIP_SAMPLES, SAMPLE_RATE
from simfl.data.synth_speakers import SpeakerProfile

MAX_SPEECH = int(0.96 * CLIP_SAMPLES)  # leave a little room around the word in a 1 s clip


@functools.cache
def _resampling_filter() -> np.ndarray:
    """resample_poly's default low-pass for 320/441, designed once (designing it per clip would
    dominate the synthesis time)."""
    from scipy.signal import firwin

    return firwin(2 * 10 * 441 + 1, 1.0 / 441, window=("kaiser", 5.0))


def resample_to_16k(wave: np.ndarray) -> np.ndarray:
    """22050 Hz -> 16000 Hz (ratio 320/441), float64 in [-1, 1]."""
    from scipy.signal import resample_poly

    return resample_poly(wave.astype(np.float64) / 32768.0, 320, 441, window=_resampling_filter())


def trim_silence(wave: np.ndarray, rel_threshold: float = 0.01, margin: int = 80) -> np.ndarray:
    """Cut eSpeak's leading/trailing silence, keeping ``margin`` samples (5 ms) around speech."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak == 0.0:
        return wave[:0]
    loud = np.flatnonzero(np.abs(wave) > rel_threshold * peak)
    return wave[max(loud[0] - margin, 0) : loud[-1] + margin + 1]


def apply_tilt(wave: np.ndarray, tilt: float) -> np.ndarray:
    """y[n] = x[n] - tilt * x[n-1]: a crude per-speaker microphone colouring."""
    out = wave.copy()
    out[1:] -= tilt * wave[:-1]
    return out


def coloured_noise(
    rng: np.random.Generator, mix: Sequence[float], n: int = CLIP_SAMPLES
) -> np.ndarray:
    """Unit-RMS noise whose power is split ``mix`` between white, pink (1/f) and brown (1/f^2).

    Independent noises add in power, so one white noise shaped by the summed spectrum is the
    same process as the sum of three, at a third of the FFTs.
    """
    # Flat below 40 Hz: otherwise brown noise spends its power on an inaudible slow drift.
    freqs = np.maximum(np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE), 40.0) / 1000.0
    shapes = [freqs**-exponent for exponent in (0.0, 1.0, 2.0)]
    psd = sum(w * shape / shape.mean() for w, shape in zip(mix, shapes, strict=True))
    psd[0] = 0.0  # no DC offset
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * np.sqrt(psd), n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def hum(rng: np.random.Generator, n: int, fundamental: float) -> np.ndarray:
    """Unit-RMS mains hum: a few harmonics with random phases."""
    t = np.arange(n) / SAMPLE_RATE
    phases = rng.uniform(0, 2 * np.pi, size=4)
    wave = sum(np.sin(2 * np.pi * fundamental * k * t + p) / k for k, p in enumerate(phases, 1))
    return wave / np.sqrt(np.mean(wave**2))


def background(
    rng: np.random.Generator, profile: SpeakerProfile, n: int = CLIP_SAMPLES
) -> np.ndarray:
    """Unit-RMS background for one clip: the speaker's coloured-noise mix (+ mains hum)."""
    noise = coloured_noise(rng, profile.noise_mix, n)
    if profile.hum_hz:
        noise = noise + rng.uniform(0.2, 0.6) * hum(rng, n, profile.hum_hz)
    return noise / np.sqrt(np.mean(noise**2))


def fit_length(wave: np.ndarray, max_len: int = MAX_SPEECH, fade: int = 320) -> np.ndarray:
    """Truncate with a 20 ms fade-out if still too long (only after re-synthesis failed)."""
    if len(wave) <= max_len:
        return wave
    out = wave[:max_len].copy()
    out[-fade:] *= np.linspace(1.0, 0.0, fade)
    return out


def mix_clip(
    speech: np.ndarray, noise: np.ndarray, rng: np.random.Generator, snr_db: float
) -> np.ndarray:
    """Place ``speech`` at a random offset over ``noise`` at ``snr_db``; peak-normalize to int16.

    The clip is as long as ``noise`` (1 s here; longer for synth-phrases).
    """
    offset = int(rng.integers(0, len(noise) - len(speech) + 1))
    speech_power = float(np.mean(speech**2)) + 1e-12
    clip = noise * np.sqrt(speech_power / 10 ** (snr_db / 10))
    clip[offset : offset + len(speech)] += speech
    clip *= rng.uniform(0.3, 0.95) / (np.max(np.abs(clip)) + 1e-12)
    return to_int16(clip)


def silence_clip(noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise only, at a random level between -55 and -20 dBFS RMS."""
    return to_int16(noise * 10 ** (rng.uniform(-55.0, -20.0) / 20))


def to_int16(wave: np.ndarray) -> np.ndarray:
    return np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)
