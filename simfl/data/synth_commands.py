"""``synth-commands``: Speech Commands words synthesized offline with eSpeak NG.

Why: a keyword-spotting benchmark that needs no download. Speakers come from
:mod:`simfl.data.synth_speakers`, speech from :mod:`simfl.data.espeak` and the noisy 1 s clip
around it from :mod:`simfl.data.synth_dsp`; clips are 1 s, 16 kHz, int16, with the word at a
random offset over coloured background noise. This module makes one speaker's clips, builds
the dataset with :mod:`simfl.data.synth_pool` and saves it.

Layout: ``cache_dir/synth-commands/<settings.cache_key()>/`` holds a ``datasets.DatasetDict``
(``save_to_disk``) with splits "train" and "test" (held-out speakers) and columns ``audio``
(int16 sequence), ``word`` (``"_silence_"`` for noise-only clips), ``speaker_id``, ``accent``,
``voice``, ``take``; sample rate and settings are in ``synth_commands.json`` beside it and in
each split's ``info.description`` (JSON).

Determinism: every speaker gets a freshly loaded and seeded eSpeak and every clip its own
seeded generator, so a speaker's audio depends only on the settings and its index, not on the
worker process that made it or what that worker did before.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simfl.atomic import publish_directory
from simfl.data.clip_format import CLIP_SAMPLES, SAMPLE_RATE, SILENCE_LABEL
from simfl.data.espeak import ESpeak
from simfl.data.settings import SYNTH_COMMANDS_GENERATOR_VERSION, SynthCommandsSettings
from simfl.data.synth_dsp import (
    MAX_SPEECH,
    apply_tilt,
    background,
    fit_length,
    mix_clip,
    resample_to_16k,
    silence_clip,
    trim_silence,
)
from simfl.data.synth_pool import ProgressFn, synthesize_speakers
from simfl.data.synth_speakers import ACCENTS, SpeakerProfile, held_out_speakers, speaker_profile

if TYPE_CHECKING:
    import datasets

DATASET_NAME = "synth-commands"
INFO_FILE = "synth_commands.json"


@dataclass(frozen=True)
class SpeakerClips:
    """All clips of one speaker, in (word order, take) then silence order."""

    profile: SpeakerProfile
    audio: np.ndarray  # (n, CLIP_SAMPLES) int16
    words: list[str]
    takes: list[int]


def synthesize_speaker(settings: SynthCommandsSettings, index: int) -> SpeakerClips:
    """Every clip of speaker ``index``; bit-identical for the same settings in any process."""
    profile = speaker_profile(settings.seed, index)
    audio, words, takes = [], [], []
    with ESpeak() as tts:
        for word in settings.words:
            for take in range(settings.takes_per_speaker):
                audio.append(_word_clip(tts, settings, profile, word, take))
                words.append(word)
                takes.append(take)
    for take in range(settings.silence_clips_per_speaker):
        rng = clip_rng(settings.seed, index, SILENCE_LABEL, take)
        audio.append(silence_clip(background(rng, profile), rng))
        words.append(SILENCE_LABEL)
        takes.append(take)
    stacked = np.stack(audio) if audio else np.zeros((0, CLIP_SAMPLES), np.int16)
    return SpeakerClips(profile, stacked, words, takes)


def clip_rng(seed: int, index: int, word: str, take: int) -> np.random.Generator:
    """The generator of one clip's random draws."""
    # Keyed by the word text, so a clip's random draws do not depend on the word list order.
    return np.random.default_rng([seed, index, zlib.crc32(word.encode()), take])


def _word_clip(
    tts: ESpeak, settings: SynthCommandsSettings, profile: SpeakerProfile, word: str, take: int
) -> np.ndarray:
    rng = clip_rng(settings.seed, profile.index, word, take)
    speech = speak_fitting(tts, rng, profile, word)
    speech = apply_tilt(speech, profile.tilt)
    noise = background(rng, profile)
    return mix_clip(
        speech, noise, rng, float(rng.uniform(settings.snr_db_min, settings.snr_db_max))
    )


def speak_fitting(
    tts: ESpeak,
    rng: np.random.Generator,
    profile: SpeakerProfile,
    word: str,
    max_len: int = MAX_SPEECH,
) -> np.ndarray:
    """Speak ``word`` with take jitter; if longer than ``max_len``, re-speak faster (keeps pitch).

    Returns float64 samples at 16 kHz (at most ``max_len``; cut with a fade after 3 tries).
    """
    rate = profile.rate * rng.uniform(0.92, 1.08)
    pitch = int(np.clip(profile.pitch + rng.integers(-4, 5), 0, 100))
    text = word + str(rng.choice([".", ".", ".", "!", "?"]))  # mostly statements
    espeak_seed = int(rng.integers(1, 2**31 - 1))
    voice = f"{ACCENTS[profile.accent]}+{profile.voice}"
    for _ in range(3):
        raw = tts.synth(
            text, voice, rate=int(min(rate, 450)), pitch=pitch,
            pitch_range=profile.pitch_range, seed=espeak_seed,
        )  # fmt: skip
        speech = trim_silence(resample_to_16k(raw))
        if len(speech) <= max_len:
            return speech
        rate *= 1.05 * len(speech) / max_len
    return fit_length(speech, max_len)


def dataset_path(settings: SynthCommandsSettings, cache_dir: str | os.PathLike[str]) -> Path:
    """Where the dataset for ``settings`` lives (whether or not it is built yet)."""
    return Path(cache_dir) / DATASET_NAME / settings.cache_key()


def build_synth_commands(
    settings: SynthCommandsSettings,
    cache_dir: str | os.PathLike[str],
    num_workers: int | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Synthesize the dataset into the cache (atomically) unless it is already there."""
    final = dataset_path(settings, cache_dir)
    if final.exists():
        return final
    speakers = synthesize_all(settings, num_workers, progress)
    dataset_dict = _to_dataset_dict(settings, speakers)
    save_dataset(dataset_dict, final, _info_payload(settings))
    return final


def load_synth_commands(
    settings: SynthCommandsSettings,
    cache_dir: str | os.PathLike[str],
    num_workers: int | None = None,
    progress: ProgressFn | None = None,
) -> datasets.DatasetDict:
    """The dataset as a DatasetDict with splits "train" and "test"; built on first use."""
    import datasets

    path = build_synth_commands(settings, cache_dir, num_workers=num_workers, progress=progress)
    return datasets.load_from_disk(str(path))


def synthesize_all(
    settings: SynthCommandsSettings,
    num_workers: int | None = None,
    progress: ProgressFn | None = None,
) -> list[SpeakerClips]:
    """Every speaker's clips, in speaker order, made by a pool of spawned processes."""
    return synthesize_speakers(settings, synthesize_speaker, num_workers, progress)


def _features() -> datasets.Features:
    import datasets

    return datasets.Features(
        {
            "audio": datasets.Sequence(datasets.Value("int16")),
            "word": datasets.Value("string"),
            "speaker_id": datasets.Value("string"),
            "accent": datasets.Value("string"),
            "voice": datasets.Value("string"),
            "take": datasets.Value("int32"),
        }
    )


def _speaker_table(clips: SpeakerClips) -> Any:
    """One speaker as a pyarrow table (one chunk per speaker keeps list offsets small)."""
    import pyarrow as pa

    n = len(clips.words)
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * CLIP_SAMPLES)
    audio = pa.ListArray.from_arrays(offsets, pa.array(clips.audio.reshape(-1)))
    p = clips.profile
    return pa.table(
        {
            "audio": audio,
            "word": pa.array(clips.words, pa.string()),
            "speaker_id": pa.array([p.speaker_id] * n, pa.string()),
            "accent": pa.array([p.accent] * n, pa.string()),
            "voice": pa.array([p.voice] * n, pa.string()),
            "take": pa.array(clips.takes, pa.int32()),
        }
    )


def _info_payload(settings: SynthCommandsSettings) -> dict[str, Any]:
    return {
        "name": DATASET_NAME,
        "sample_rate": SAMPLE_RATE,
        "generator_version": SYNTH_COMMANDS_GENERATOR_VERSION,
        "cache_key": settings.cache_key(),
        "settings": settings.model_dump(mode="json"),
    }


def _to_dataset_dict(
    settings: SynthCommandsSettings, speakers: Sequence[SpeakerClips]
) -> datasets.DatasetDict:
    import datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    test = held_out_speakers(settings)
    features = _features()
    description = json.dumps(_info_payload(settings), sort_keys=True)
    splits = {}
    for name, keep in (("train", False), ("test", True)):
        tables = [_speaker_table(s) for s in speakers if (s.profile.index in test) == keep]
        table = pa.concat_tables(tables).cast(features.arrow_schema)
        info = datasets.DatasetInfo(description=description, features=features)
        # An explicit fingerprint: the default one pickles and hashes the whole table.
        fingerprint = f"{DATASET_NAME}-{settings.cache_key()}-{name}"
        splits[name] = datasets.Dataset(
            InMemoryTable(table), info=info, split=name, fingerprint=fingerprint
        )
    return datasets.DatasetDict(splits)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Silence HF datasets' tqdm bars for a block, restoring the caller's setting after."""
    import datasets

    was_disabled = not datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def save_dataset(
    dataset_dict: datasets.DatasetDict, final: Path, info: dict[str, Any] | None = None
) -> None:
    """Publish ``dataset_dict`` (and its ``info`` file) at ``final`` atomically."""

    def fill(tmp: Path) -> None:
        with _quiet_datasets():  # simfl's own progress bar already covers this stage
            dataset_dict.save_to_disk(str(tmp))
        if info is not None:
            (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

    publish_directory(final, fill)
