"""Synthetic speakers: each one an eSpeak voice variant x English accent x pitch x pitch range x
rate, plus a microphone tilt and a noise "room", so speakers differ the way federated clients do.

A speaker is fixed by (seed, index) alone, whatever the other settings, so synth-commands and
synth-phrases built with the same seed share their speakers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simfl.data.settings import num_test_speakers

# Accent label -> eSpeak voice name. All English voices in the bundled espeak-ng-data except
# en-Shaw (Shavian alphabet input, not an accent). "en" is eSpeak's en-GB voice.
ACCENTS: dict[str, str] = {
    "en-us": "en-us",
    "en-us-nyc": "en-us-nyc",
    "en-gb": "en",
    "en-gb-x-rp": "en-gb-x-rp",
    "en-gb-scotland": "en-gb-scotland",
    "en-gb-x-gbclan": "en-gb-x-gbclan",
    "en-gb-x-gbcwmd": "en-gb-x-gbcwmd",
    "en-029": "en-029",
}

# Human-sounding variants from espeak-ng-data/voices/!v; robots, whispers, croaks, long echoes
# and variants that clip or override the language are left out, and so is "Reed" (Klatt with
# breath), whose output changes between library loads in one process. Drawn gender-balanced.
FEMALE_VARIANTS: tuple[str, ...] = (
    "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika", "aunty", "belinda",
    "grandma", "linda", "shelby", "steph", "steph2", "steph3", "zac",
)  # fmt: skip
MALE_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Alex", "Andy", "Denis", "Diogo", "Gene",
    "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Mario", "Michael", "Mike", "Nguyen", "adam",
    "benjamin", "boris", "david", "ed", "edward", "edward2", "grandpa", "gustave", "iven2",
    "klatt", "klatt2", "klatt3", "klatt4", "marcelo", "max", "michel", "miguel", "mike2", "paul",
    "pedro", "quincy", "rob", "robert", "sandro", "travis", "victor",
)  # fmt: skip

_SPLIT_SALT = 0x5EED_5B17  # separates the train/test draw from the speaker draws


class SpeakerSplitSettings(Protocol):
    """What the train/test speaker split reads (synth-commands' and synth-phrases' settings)."""

    @property
    def num_speakers(self) -> int: ...
    @property
    def test_speaker_fraction(self) -> float: ...
    @property
    def seed(self) -> int: ...


@dataclass(frozen=True)
class SpeakerProfile:
    """A synthetic speaker: fixed by (seed, index) alone, whatever the other settings."""

    index: int
    speaker_id: str
    accent: str
    voice: str
    pitch: int  # eSpeak espeakPITCH, 0..100 (50 = the variant's own pitch)
    pitch_range: int  # eSpeak espeakRANGE, 0..100
    rate: int  # words per minute
    tilt: float  # first-order "microphone" filter coefficient (>0 brighter, <0 duller)
    noise_mix: tuple[float, float, float]  # power fractions of white, pink, brown noise
    hum_hz: float  # mains hum fundamental, 0.0 = no hum


def speaker_id(index: int) -> str:
    return f"spk{index:04d}"


def speaker_profile(seed: int, index: int) -> SpeakerProfile:
    """Draw speaker ``index`` deterministically from ``np.random.default_rng([seed, index])``."""
    rng = np.random.default_rng([seed, index])
    female = rng.random() < 0.5
    variants = FEMALE_VARIANTS if female else MALE_VARIANTS
    hum_hz = float(rng.choice([50.0, 60.0])) if rng.random() < 0.25 else 0.0
    return SpeakerProfile(
        index=index,
        speaker_id=speaker_id(index),
        accent=str(rng.choice(list(ACCENTS))),
        voice=str(rng.choice(variants)),
        pitch=int(rng.integers(25, 76)),
        pitch_range=int(rng.integers(20, 81)),
        rate=int(rng.integers(140, 211)),
        tilt=float(rng.uniform(-0.6, 0.6)),
        noise_mix=tuple(float(w) for w in rng.dirichlet([1.0, 1.0, 1.0])),  # type: ignore[arg-type]
        hum_hz=hum_hz,
    )


def held_out_speakers(settings: SpeakerSplitSettings) -> frozenset[int]:
    """Held-out speakers: a seeded random subset, disjoint from the train speakers."""
    n_test = num_test_speakers(settings.num_speakers, settings.test_speaker_fraction)
    order = np.random.default_rng([settings.seed, _SPLIT_SALT]).permutation(settings.num_speakers)
    return frozenset(int(i) for i in order[:n_test])
