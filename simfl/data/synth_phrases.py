"""``synth-phrases``: short command phrases and digit strings spoken by synth-commands' speakers.

Why: a speech-to-text benchmark (Whisper ASR) that needs no download. Speakers, accents, noise
and the deterministic per-speaker eSpeak handling are synth-commands' own
(:mod:`simfl.data.synth_commands`); only the text differs: phrases of a few words and seeded
digit strings, in clips of ``clip_seconds`` (3 s by default). Columns: ``audio`` (int16),
``text`` (the transcript), ``word`` (the same text: label views and partitioners key on it),
``speaker_id``, ``accent``, ``voice``, ``take``; splits "train" and "test" (held-out speakers).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simfl.data import synth_commands as sc

if TYPE_CHECKING:
    import datasets

GENERATOR_VERSION = 1
DATASET_NAME = "synth-phrases"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DEFAULT_PHRASES: tuple[str, ...] = (
    "turn left", "turn right", "go up", "go down", "go forward", "go backward", "stop now",
    "switch on", "switch off", "follow me", "yes please", "no thanks", "learn this word",
    "go left then right", "open the house", "wow that is visual",
)  # fmt: skip
_DIGIT_SALT = 0xD161_7500


class SynthPhrasesSettings(BaseModel):
    """Everything that determines the generated dataset (and therefore its cache key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phrases: tuple[str, ...] = Field(default=DEFAULT_PHRASES, max_length=500)
    digit_strings: int = Field(default=8, ge=0, le=500)
    digits_min: int = Field(default=2, ge=1, le=10)
    digits_max: int = Field(default=4, ge=1, le=10)
    num_speakers: int = Field(default=40, ge=2, le=2000)
    takes_per_speaker: int = Field(default=1, ge=1, le=10)
    test_speaker_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    clip_seconds: float = Field(default=3.0, ge=1.0, le=30.0)
    snr_db_min: float = Field(default=10.0, ge=-10.0, le=60.0)
    snr_db_max: float = Field(default=30.0, ge=-10.0, le=60.0)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)

    @field_validator("phrases")
    @classmethod
    def _check_phrases(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        bad = [p for p in phrases if p != " ".join(p.split()) or not p.replace(" ", "").isalpha()]
        bad += [p for p in phrases if not (p.isascii() and p.islower())]
        if bad:
            raise ValueError(f"phrases must be lowercase ASCII words separated by one space: {bad}")
        if len(set(phrases)) != len(phrases):
            raise ValueError("phrases must be unique")
        return phrases

    @model_validator(mode="after")
    def _check_ranges(self) -> Self:
        if self.snr_db_min > self.snr_db_max:
            raise ValueError("snr_db_min must be <= snr_db_max")
        if self.digits_min > self.digits_max:
            raise ValueError("digits_min must be <= digits_max")
        if not self.all_phrases():
            raise ValueError("no phrases: give phrases or digit_strings > 0")
        clips = self.num_speakers * len(self.all_phrases()) * self.takes_per_speaker
        if clips * self.clip_seconds > sc.MAX_CLIPS:
            raise ValueError(f"at most {sc.MAX_CLIPS} s of audio: the build holds it in memory")
        n_test = sc.num_test_speakers(self.num_speakers, self.test_speaker_fraction)
        if not 1 <= n_test < self.num_speakers:
            raise ValueError("test_speaker_fraction must leave >= 1 train and >= 1 test speaker")
        return self

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * sc.SAMPLE_RATE))

    def all_phrases(self) -> tuple[str, ...]:
        """The fixed phrases, then ``digit_strings`` seeded digit strings (duplicates dropped)."""
        rng = np.random.default_rng([self.seed, _DIGIT_SALT])
        digits: list[str] = []
        for _ in range(self.digit_strings):
            length = int(rng.integers(self.digits_min, self.digits_max + 1))
            digits.append(" ".join(DIGITS[int(d)] for d in rng.integers(0, 10, size=length)))
        return tuple(dict.fromkeys((*self.phrases, *digits)))

    def cache_key(self) -> str:
        payload = json.dumps(
            {"generator": GENERATOR_VERSION, "commands": sc.GENERATOR_VERSION,
             **self.model_dump(mode="json")}, sort_keys=True,
        )  # fmt: skip
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PhraseClips:
    """All clips of one speaker, in (phrase order, take) order."""

    profile: sc.SpeakerProfile
    audio: np.ndarray  # (n, clip_samples) int16
    texts: list[str]
    takes: list[int]


def synthesize_phrases(settings: SynthPhrasesSettings, index: int) -> PhraseClips:
    """Every clip of speaker ``index``; bit-identical for the same settings in any process."""
    profile = sc.speaker_profile(settings.seed, index)
    n = settings.clip_samples
    audio, texts, takes = [], [], []
    with sc.ESpeak() as tts:
        for text in settings.all_phrases():
            for take in range(settings.takes_per_speaker):
                rng = sc._clip_rng(settings.seed, index, f"phrase:{text}", take)
                speech = sc._speak_within_a_second(tts, rng, profile, text, int(0.96 * n))
                speech = sc.apply_tilt(speech, profile.tilt)
                noise = sc.background(rng, profile, n)
                snr = float(rng.uniform(settings.snr_db_min, settings.snr_db_max))
                audio.append(sc.mix_clip(speech, noise, rng, snr))
                texts.append(text)
                takes.append(take)
    return PhraseClips(profile, np.stack(audio), texts, takes)


def _features() -> datasets.Features:
    import datasets

    string = datasets.Value("string")
    return datasets.Features(
        {
            "audio": datasets.Sequence(datasets.Value("int16")),
            "word": string,
            "text": string,
            "speaker_id": string,
            "accent": string,
            "voice": string,
            "take": datasets.Value("int32"),
        }
    )


def _speaker_table(clips: PhraseClips, clip_samples: int) -> Any:
    import pyarrow as pa

    n = len(clips.texts)
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * clip_samples)
    p = clips.profile
    return pa.table(
        {
            "audio": pa.ListArray.from_arrays(offsets, pa.array(clips.audio.reshape(-1))),
            "word": pa.array(clips.texts, pa.string()),
            "text": pa.array(clips.texts, pa.string()),
            "speaker_id": pa.array([p.speaker_id] * n, pa.string()),
            "accent": pa.array([p.accent] * n, pa.string()),
            "voice": pa.array([p.voice] * n, pa.string()),
            "take": pa.array(clips.takes, pa.int32()),
        }
    )


def _to_dataset_dict(
    settings: SynthPhrasesSettings, speakers: list[PhraseClips]
) -> datasets.DatasetDict:
    import datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    test = sc.held_out_speakers(settings)  # type: ignore[arg-type]  # same fields are used
    features = _features()
    splits = {}
    for name, keep in (("train", False), ("test", True)):
        tables = [
            _speaker_table(s, settings.clip_samples)
            for s in speakers
            if (s.profile.index in test) == keep
        ]
        table = pa.concat_tables(tables).cast(features.arrow_schema)
        info = datasets.DatasetInfo(description=DATASET_NAME, features=features)
        fingerprint = f"{DATASET_NAME}-{settings.cache_key()}-{name}"
        splits[name] = datasets.Dataset(
            InMemoryTable(table), info=info, split=name, fingerprint=fingerprint
        )
    return datasets.DatasetDict(splits)


def load_synth_phrases(
    settings: SynthPhrasesSettings,
    cache_dir: str | os.PathLike[str],
    num_workers: int | None = None,
    progress: sc.ProgressFn | None = None,
) -> datasets.DatasetDict:
    """The dataset as a DatasetDict with splits "train" and "test"; built on first use."""
    import datasets

    final = Path(cache_dir) / DATASET_NAME / settings.cache_key()
    if not final.exists():
        speakers = sc.synthesize_all(
            settings,  # type: ignore[arg-type]  # the pool only needs num_speakers
            num_workers,
            progress,
            worker=synthesize_phrases,
        )
        sc.save_dataset(_to_dataset_dict(settings, speakers), final)
    return datasets.load_from_disk(str(final))
