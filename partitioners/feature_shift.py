"""Acoustic feature shift: every client records through its own channel.

A client's condition is additive noise at its own SNR, a band-pass "microphone" (high-pass and
low-pass cut-offs), a gain, a speed perturbation (tempo and pitch together, as Kaldi's speed
perturbation) and optionally room reverb. Each client draws fixed positions ``u`` in [0, 1]
(seeded by client id); ``severity`` scales how far from the clean channel they may go, so at
severity 0 every client's channel is the identity and the audio is bit-identical, and at 1 the
clients spread from clean to 0 dB SNR, 1.5 kHz bandwidth, +-12 dB, +-15 % speed.

Flower Datasets has no feature-shift partitioner: the sample split here is any other
partitioner's (IID by default) and the conditions are applied to the audio before feature
extraction (simfl/data/conditions.py caches the conditioned features per partition).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy import signal

from partitioners.base import Partitioner
from partitioners.iid import IidPartitioner
from simfl.seeding import rng_for

SNR_CLEAN_DB, SNR_WORST_DB = 40.0, 0.0
LOWPASS_MAX_HZ, LOWPASS_MIN_HZ = 7800.0, 1500.0
HIGHPASS_MIN_HZ, HIGHPASS_MAX_HZ = 20.0, 500.0
GAIN_MAX_DB = 12.0
SPEED_MAX_DEVIATION = 0.15
RT60_MAX_S = 0.8
FILTER_ORDER = 6
Effect = Literal["noise", "band", "gain", "speed", "reverb"]


class AcousticParams(BaseModel):
    """How far apart the clients' recording conditions are, and which effects make them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    severity: float = Field(default=0.5, ge=0.0, le=1.0)
    effects: tuple[Effect, ...] = ("noise", "band", "gain", "speed")


class AcousticConfig(AcousticParams):
    """``[partition] kind = "acoustic"``: IID split, a recording condition per client."""

    kind: Literal["acoustic"]


@dataclass(frozen=True)
class Condition:
    """One client's channel; ``None`` / 0 / 1 mean the effect is off."""

    snr_db: float | None = None
    highpass_hz: float | None = None
    lowpass_hz: float | None = None
    gain_db: float = 0.0
    speed: float = 1.0
    rt60_s: float | None = None

    @property
    def is_neutral(self) -> bool:
        return self == Condition()


def client_condition(params: AcousticParams, seed: int, client: int) -> Condition:
    """Client ``client``'s condition: its own seeded positions scaled by ``severity``."""
    u = rng_for(seed, "acoustic-condition", client).random(6) * params.severity
    if params.severity == 0.0:
        return Condition()
    on = set(params.effects)
    band = "band" in on
    return Condition(
        snr_db=SNR_CLEAN_DB - u[0] * (SNR_CLEAN_DB - SNR_WORST_DB) if "noise" in on else None,
        highpass_hz=HIGHPASS_MIN_HZ + u[1] * (HIGHPASS_MAX_HZ - HIGHPASS_MIN_HZ) if band else None,
        lowpass_hz=LOWPASS_MAX_HZ - u[2] * (LOWPASS_MAX_HZ - LOWPASS_MIN_HZ) if band else None,
        gain_db=(2 * u[3] - params.severity) * GAIN_MAX_DB if "gain" in on else 0.0,
        speed=1.0 + (2 * u[4] - params.severity) * SPEED_MAX_DEVIATION if "speed" in on else 1.0,
        rt60_s=u[5] * RT60_MAX_S if "reverb" in on and u[5] > 0 else None,
    )


def conditions_table(conditions: list[Condition]) -> pd.DataFrame:
    rows = [dataclasses.asdict(c) for c in conditions]
    return pd.DataFrame(rows, columns=[f.name for f in dataclasses.fields(Condition)]).astype(float)


# --------------------------------------------------------------------------- signal processing


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


# --------------------------------------------------------------------------- partitioner


class AcousticPartitioner(Partitioner):
    """A sample split (IID unless given) plus one recording condition per client."""

    def __init__(
        self,
        num_partitions: int,
        params: AcousticParams,
        seed: int,
        base: Partitioner | None = None,
    ) -> None:
        super().__init__(num_partitions, seed)
        self.params = params
        self.base = base or IidPartitioner(num_partitions, seed)
        self.metadata_columns = self.base.metadata_columns

    @classmethod
    def from_config(cls, config: AcousticConfig, num_partitions: int, seed: int):
        return cls(num_partitions, config, seed)

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        return self.base.split(labels, metadata)

    def client_conditions(self) -> list[Condition]:
        return [client_condition(self.params, self.seed, c) for c in range(self.num_partitions)]
