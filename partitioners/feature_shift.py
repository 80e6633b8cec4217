"""Acoustic feature shift: every client records through its own channel.

A client's condition is additive noise at its own SNR, a band-pass "microphone" (high-pass and
low-pass cut-offs), a gain, a speed perturbation (tempo and pitch together, as Kaldi's speed
perturbation) and optionally room reverb. Each client draws fixed positions ``u`` in [0, 1]
(seeded by client id); ``severity`` scales how far from the clean channel they may go, so at
severity 0 every client's channel is the identity and the audio is bit-identical, and at 1 the
clients spread from clean to 0 dB SNR, 1.5 kHz bandwidth, +-12 dB, +-15 % speed.

Flower Datasets has no feature-shift partitioner: the sample split here is any other
partitioner's (IID by default) and this module only decides each client's channel. Applying it
to audio is signal processing and lives with the data code (simfl/data/acoustic.py; simfl
caches the conditioned features per partition in simfl/data/conditions.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from partitioners.base import Partitioner
from partitioners.iid import IidPartitioner
from partitioners.params import AcousticParams, IidParams
from partitioners.seeding import rng_for

SNR_CLEAN_DB, SNR_WORST_DB = 40.0, 0.0
LOWPASS_MAX_HZ, LOWPASS_MIN_HZ = 7800.0, 1500.0
HIGHPASS_MIN_HZ, HIGHPASS_MAX_HZ = 20.0, 500.0
GAIN_MAX_DB = 12.0
SPEED_MAX_DEVIATION = 0.15
RT60_MAX_S = 0.8


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
    """One row per client, one float column per condition field (NaN where an effect is off)."""
    rows = [dataclasses.asdict(c) for c in conditions]
    return pd.DataFrame(rows, columns=[f.name for f in dataclasses.fields(Condition)]).astype(float)


class AcousticPartitioner(Partitioner[AcousticParams]):
    """A sample split (IID unless ``base`` is given) plus one recording condition per client."""

    def __init__(
        self,
        num_partitions: int,
        params: AcousticParams,
        seed: int,
        base: Partitioner | None = None,
    ) -> None:
        super().__init__(num_partitions, params, seed)
        self.base = base or IidPartitioner(num_partitions, IidParams(), seed)
        self.metadata_columns = self.base.metadata_columns

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        return self.base.split(labels, metadata)

    def client_conditions(self) -> list[Condition]:
        return [client_condition(self.params, self.seed, c) for c in range(self.num_partitions)]
