"""``synth-phrases``: short command phrases and digit strings spoken by synth-commands' speakers.

Why: a speech-to-text benchmark (Whisper ASR) that needs no download. Speakers, accents, noise
and the deterministic per-speaker eSpeak handling are synth-commands' own
(:mod:`simfl.data.synth_speakers`, :mod:`simfl.data.espeak`, :mod:`simfl.data.synth_dsp`);
only the text differs: phrases of a few words and seeded digit strings, in clips of
``clip_seconds`` (3 s by default); the settings are
:class:`simfl.data.settings.SynthPhrasesSettings`. Columns: ``audio`` (int16),
``text`` (the transcript), ``word`` (the same text: label views and partitioners key on it),
``speaker_id``, ``accent``, ``voice``, ``take``; splits "train" and "test" (held-out speakers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simfl.data.espeak import ESpeak
from simfl.data.settings import SynthPhrasesSettings
from simfl.data.synth_commands import clip_rng, save_dataset, speak_fitting
from simfl.data.synth_dsp import apply_tilt, background, mix_clip
from simfl.data.synth_pool import ProgressFn, synthesize_speakers
from simfl.data.synth_speakers import SpeakerProfile, held_out_speakers, speaker_profile

if TYPE_CHECKING:
    import datasets

DATASET_NAME = "synth-phrases"


@dataclass(frozen=True)
class PhraseClips:
    """All clips of one speaker, in (phrase order, take) order."""

    profile: SpeakerProfile
    audio: np.ndarray  # (n, clip_samples) int16
    texts: list[str]
    takes: list[int]


def synthesize_phrases(settings: SynthPhrasesSettings, index: int) -> PhraseClips:
    """Every clip of speaker ``index``; bit-identical for the same settings in any process."""
    profile = speaker_profile(settings.seed, index)
    n = settings.clip_samples
    audio, texts, takes = [], [], []
    with ESpeak() as tts:
        for text in settings.all_phrases():
            for take in range(settings.takes_per_speaker):
                rng = clip_rng(settings.seed, index, f"phrase:{text}", take)
                speech = speak_fitting(tts, rng, profile, text, int(0.96 * n))
                speech = apply_tilt(speech, profile.tilt)
                noise = background(rng, profile, n)
                snr = float(rng.uniform(settings.snr_db_min, settings.snr_db_max))
                audio.append(mix_clip(speech, noise, rng, snr))
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

    test = held_out_speakers(settings)
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
    progress: ProgressFn | None = None,
) -> datasets.DatasetDict:
    """The dataset as a DatasetDict with splits "train" and "test"; built on first use."""
    import datasets

    final = Path(cache_dir) / DATASET_NAME / settings.cache_key()
    if not final.exists():
        speakers = synthesize_speakers(settings, synthesize_phrases, num_workers, progress)
        save_dataset(_to_dataset_dict(settings, speakers), final)
    return datasets.load_from_disk(str(final))
