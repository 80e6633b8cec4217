"""Tiny Speech Commands copies in the real layouts, written with soundfile for the tests.

``make_archive`` mirrors the extracted ``speech_commands_v0.02`` tar; ``make_parquet`` the Hub's
Parquet conversion (``v0.02/<split>/0000.parquet`` with the real column schema and feature
metadata, train silence as whole background recordings, test silence as 1 s clips, test unknown
words labelled with their own word as in the official test-set archive).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile

from simfl.data.speech_commands import HUB_LABELS_V2

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
OTHERS = ("cat", "marvin")
WORDS = COMMANDS + OTHERS
NOISE_FILES = {"white_noise.wav": 16_000, "running_tap.wav": 22_050}  # name -> sample rate
NOISE_SECONDS = 6.0


@dataclass(frozen=True)
class Speakers:
    train: tuple[str, ...]
    test: tuple[str, ...]
    validation: tuple[str, ...]


def speaker_hash(index: int) -> str:
    return hashlib.md5(str(index).encode()).hexdigest()[:8]


SPEAKERS = Speakers(
    train=tuple(speaker_hash(i) for i in range(8)),
    test=tuple(speaker_hash(i) for i in range(8, 11)),
    validation=tuple(speaker_hash(i) for i in range(11, 13)),
)
# Speaker 0 recorded at 8 kHz and 0.7 s: tests resampling and padding.
ODD_SPEAKER, ODD_RATE, ODD_SECONDS = SPEAKERS.train[0], 8_000, 0.7


def word_wave(word: str, speaker: str, take: int, rate: int = 16_000, seconds: float = 1.0):
    """A learnable stand-in for a spoken word: a word-specific tone burst over faint noise."""
    rng = np.random.default_rng([int(speaker, 16), take, WORDS.index(word)])
    t = np.arange(int(rate * seconds)) / rate
    freq = 300.0 + 150.0 * WORDS.index(word) + rng.uniform(-10, 10)
    envelope = np.exp(-(((t - seconds / 2) / 0.15) ** 2))
    wave = 0.5 * envelope * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))
    return (wave * 32767).astype(np.int16)


def noise_wave(name: str, rate: int) -> np.ndarray:
    rng = np.random.default_rng(len(name))
    return (0.3 * rng.standard_normal(int(rate * NOISE_SECONDS)) * 32767).astype(np.int16)


def clip_rate(speaker: str) -> tuple[int, float]:
    return (ODD_RATE, ODD_SECONDS) if speaker == ODD_SPEAKER else (16_000, 1.0)


def takes_of(speaker: str, word: str) -> range:
    """Two takes of "yes" for the first two speakers of each split, one take otherwise."""
    firsts = {SPEAKERS.train[0], SPEAKERS.train[1], SPEAKERS.test[0]}
    return range(2 if word == "yes" and speaker in firsts else 1)


def make_archive(root: Path) -> Path:
    """An extracted-archive tree: word folders, background noise, validation and test lists."""
    lists: dict[str, list[str]] = {"validation": [], "test": []}
    for group in ("train", "test", "validation"):
        for speaker in getattr(SPEAKERS, group):
            rate, seconds = clip_rate(speaker)
            for word in WORDS:
                for take in takes_of(speaker, word):
                    rel = f"{word}/{speaker}_nohash_{take}.wav"
                    (root / word).mkdir(parents=True, exist_ok=True)
                    soundfile.write(root / rel, word_wave(word, speaker, take, rate, seconds), rate)
                    if group != "train":
                        lists[group].append(rel)
    (root / "_background_noise_").mkdir(parents=True, exist_ok=True)
    for name, rate in NOISE_FILES.items():
        soundfile.write(root / "_background_noise_" / name, noise_wave(name, rate), rate)
    (root / "validation_list.txt").write_text("\n".join(lists["validation"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")
    (root / "LICENSE").write_text("CC BY 4.0\n")
    return root


def hub_features() -> datasets.Features:
    """The Hub's v0.02 features (what its Parquet files carry in their schema metadata)."""
    return datasets.Features(
        {
            "file": datasets.Value("string"),
            "audio": datasets.Audio(sampling_rate=16_000),
            "label": datasets.ClassLabel(names=list(HUB_LABELS_V2)),
            "is_unknown": datasets.Value("bool"),
            "speaker_id": datasets.Value("string"),
            "utterance_id": datasets.Value("int8"),
        }
    )


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _row(file: str, audio: bytes, word: str, speaker: str | None, take: int) -> dict:
    label = HUB_LABELS_V2.index(word)
    return {
        "file": file,
        "audio": {"bytes": audio, "path": file},
        "label": label,
        "is_unknown": word not in COMMANDS and word != "_silence_",
        "speaker_id": speaker,
        "utterance_id": take,
    }


def _word_rows(speakers: tuple[str, ...], test_archive: bool) -> list[dict]:
    rows = []
    for speaker in speakers:
        rate, seconds = clip_rate(speaker)
        for word in WORDS:
            for take in takes_of(speaker, word):
                name = f"{speaker}_nohash_{take}.wav"
                folder = "_unknown_" if test_archive and word not in COMMANDS else word
                file = f"{folder}/{word}_{name}" if folder == "_unknown_" else f"{word}/{name}"
                audio = wav_bytes(word_wave(word, speaker, take, rate, seconds), rate)
                rows.append(_row(file, audio, word, speaker, take))
    return rows


NUM_TEST_SILENCE = 4


def make_parquet(root: Path) -> Path:
    """``v0.02/{train,validation,test}/0000.parquet`` like the Hub's conversion."""
    train = _word_rows(SPEAKERS.train, test_archive=False)
    train += [
        _row(f"_background_noise_/{n}", wav_bytes(noise_wave(n, r), r), "_silence_", None, 0)
        for n, r in NOISE_FILES.items()
    ]
    test = _word_rows(SPEAKERS.test, test_archive=True)
    rng = np.random.default_rng(7)
    for i in range(NUM_TEST_SILENCE):
        noise = wav_bytes((rng.standard_normal(16_000) * 300).astype(np.int16), 16_000)
        test.append(_row(f"_silence_/{i}.wav", noise, "_silence_", None, 0))
    validation = _word_rows(SPEAKERS.validation, test_archive=False)
    schema = hub_features().arrow_schema
    for split, rows in (("train", train), ("validation", validation), ("test", test)):
        folder = root / "v0.02" / split
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "0000.parquet")
    return root


def count_train_words() -> int:
    return sum(len(takes_of(s, w)) for s in SPEAKERS.train for w in WORDS)


def count_test_words() -> int:
    return sum(len(takes_of(s, w)) for s in SPEAKERS.test for w in WORDS)
