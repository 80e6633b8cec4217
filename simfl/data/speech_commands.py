"""``speech-commands``: Google Speech Commands v0.02 from a local copy, in two layouts.

Why two layouts and no download: Hugging Face's ``google/speech_commands`` needs a loading script
that ``datasets`` >= 4 refuses to run, so users have either

- ``archive``: the official ``speech_commands_v0.02.tar.gz`` extracted: ``<word>/<speaker>_nohash_
  <n>.wav``, ``_background_noise_/*.wav``, ``validation_list.txt`` and ``testing_list.txt``; or
- ``parquet``: the Hub's Parquet conversion (branch ``refs/convert/parquet``, config ``v0.02``):
  ``[v0.02/]<split>/*.parquet`` with columns ``file``, ``audio`` ({bytes, path}), ``label``
  (ClassLabel over the 35 words and ``_silence_``), ``is_unknown``, ``speaker_id``,
  ``utterance_id``. It is read with ``datasets.load_dataset("parquet", streaming=True)`` and
  ``Audio(decode=False)``; the bytes are decoded with soundfile (no torchcodec or FFmpeg).

Splits: ``train`` is every clip in neither list, ``test`` the ``testing_list.txt`` clips (the
Parquet ``test`` split is the official test-set archive). The lists assign whole speakers by a
hash of their id, so test speakers are held out as in synth-commands; ``validation`` is unused.
``speaker_id`` is the hash before ``_nohash_``, ``take`` the number after it.

Silence, as in TensorFlow's benchmark: 1 s windows at seeded random offsets and levels cut from
the background-noise recordings, ``silence_fraction`` times the split's word clips (the 12-class
view then subsamples silence to an average command's size). In the archive layout the last
``silence_test_fraction`` of every recording is kept for test windows, so test silence is never
heard in training. Silence has no speaker; each window is dealt to one of its split's speakers
(seeded round robin), so a speaker partition gives every client some silence instead of handing
the whole class to a few "noise speakers". Its ``file`` column says where it was cut from.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from simfl.data.audio_io import fit_clip, load_clip, load_recording, to_pcm16
from simfl.data.clip_format import CLIP_SAMPLES, SILENCE_LABEL
from simfl.data.converted import Clip, ProgressFn, build_converted, load_converted
from simfl.data.local_copies import LISTS, parquet_files
from simfl.data.local_settings import SPEECH_COMMANDS_LOADER_VERSION, SpeechCommandsSettings
from simfl.errors import SimflError

DATASET_NAME = "speech-commands"
BACKGROUND_DIR = "_background_noise_"
# The Hub's ClassLabel names for v0.02 (used when a Parquet file carries no feature metadata).
HUB_LABELS_V2: tuple[str, ...] = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "zero", "one", "two",
    "three", "four", "five", "six", "seven", "eight", "nine", "bed", "bird", "cat", "dog",
    "happy", "house", "marvin", "sheila", "tree", "wow", "backward", "forward", "follow",
    "learn", "visual", SILENCE_LABEL,
)  # fmt: skip
NO_SPEAKER = "_background_"  # only if a split has silence but no speaker at all
_CLIP_NAME = re.compile(r"^(?P<speaker>[^_/]+)_nohash_(?P<take>\d+)\.wav$")
_SILENCE_SALT = 0x511E_9CE5
_LONG_RECORDING = int(1.5 * CLIP_SAMPLES)  # longer silence rows are recordings to cut from
_SILENCE_DB = (-30.0, 0.0)  # window level relative to the recording


# ---------------------------------------------------------------------------------------------
# Silence
# ---------------------------------------------------------------------------------------------


def silence_rng(settings: SpeechCommandsSettings, split: str) -> np.random.Generator:
    return np.random.default_rng(
        [settings.silence_seed, _SILENCE_SALT, ["train", "test"].index(split)]
    )


def speaker_cycle(speakers: Iterable[str], rng: np.random.Generator) -> Callable[[int], str]:
    """Silence clip i -> a speaker of the split: seeded order, then round robin."""
    order = [str(s) for s in rng.permutation(sorted(set(speakers)))] or [NO_SPEAKER]
    return lambda i: order[i % len(order)]


def cut_silence(
    recordings: list[tuple[str, np.ndarray]],
    count: int,
    speaker_of: Callable[[int], str],
    rng: np.random.Generator,
) -> Iterator[Clip]:
    """``count`` 1 s windows of random recordings at random offsets and levels."""
    for i in range(count if recordings else 0):
        name, wave = recordings[int(rng.integers(len(recordings)))]
        start = int(rng.integers(0, max(len(wave) - CLIP_SAMPLES, 0) + 1))
        gain = 10 ** (rng.uniform(*_SILENCE_DB) / 20)
        audio = to_pcm16(fit_clip(wave[start : start + CLIP_SAMPLES]) * gain)
        yield Clip(audio, SILENCE_LABEL, speaker_of(i), i, f"{name}@{start}")


# ---------------------------------------------------------------------------------------------
# Archive layout
# ---------------------------------------------------------------------------------------------


def parse_clip_name(path: Path) -> tuple[str, int]:
    """``<speaker>_nohash_<n>.wav`` -> (speaker, n); a clear error for anything else."""
    match = _CLIP_NAME.match(path.name)
    if match is None:
        raise SimflError(f"{path}: not a Speech Commands clip name '<speaker>_nohash_<n>.wav'")
    return match["speaker"], int(match["take"])


def archive_entries(root: Path) -> dict[str, list[str]]:
    """Relative clip paths per split ("train", "test"), sorted; validation clips are left out."""
    listed = {split: _read_list(root / name) for split, name in LISTS.items()}
    entries: dict[str, list[str]] = {"train": [], "test": []}
    for wav in sorted(root.glob("*/*.wav")):
        word = wav.parent.name
        if word.startswith(("_", ".")) or wav.name.startswith("."):
            continue
        rel = f"{word}/{wav.name}"
        if rel in listed["test"]:
            entries["test"].append(rel)
        elif rel not in listed["validation"]:
            entries["train"].append(rel)
    return entries


def _read_list(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def background_regions(
    root: Path, split: str, test_fraction: float
) -> list[tuple[str, np.ndarray]]:
    """Each noise recording's head (train) or its last ``test_fraction`` (test)."""
    regions = []
    for wav in sorted((root / BACKGROUND_DIR).glob("*.wav")):
        wave = load_recording(wav)
        cut = int(round(len(wave) * (1.0 - test_fraction)))
        regions.append(
            (f"{BACKGROUND_DIR}/{wav.name}", wave[:cut] if split == "train" else wave[cut:])
        )
    return [(name, wave) for name, wave in regions if len(wave)]


def archive_split(
    settings: SpeechCommandsSettings, split: str, entries: list[str]
) -> Iterator[Clip]:
    """Word clips of ``split`` in path order, then its silence windows."""
    root = settings.root
    speakers = []
    for rel in entries:
        speaker, take = parse_clip_name(root / rel)
        speakers.append(speaker)
        yield Clip(load_clip(root / rel), rel.split("/")[0], speaker, take, rel)
    rng = silence_rng(settings, split)
    count = round(settings.silence_fraction * len(entries))
    regions = background_regions(root, split, settings.silence_test_fraction)
    yield from cut_silence(regions, count, speaker_cycle(speakers, rng), rng)


# ---------------------------------------------------------------------------------------------
# Parquet layout
# ---------------------------------------------------------------------------------------------


def label_names(features: datasets.Features | None) -> list[str] | None:
    """The ClassLabel names of ``label`` (None when labels are strings already)."""
    feature = (features or {}).get("label")
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    if isinstance(feature, datasets.Value) and feature.dtype == "string":
        return None
    return list(HUB_LABELS_V2)  # integer labels without metadata: the Hub's v0.02 order


def _row_audio(row: dict[str, Any], root: Path) -> tuple[bytes | Path, str]:
    audio = row["audio"] or {}
    name = row.get("file") or audio.get("path") or "<unnamed row>"
    if audio.get("bytes"):
        return audio["bytes"], name
    if audio.get("path"):
        return root / audio["path"], name
    raise SimflError(f"{name}: Parquet row has neither audio bytes nor a path")


def parquet_rows(files: list[Path]) -> tuple[Iterable[dict[str, Any]], list[str] | None]:
    """Rows of ``files`` streamed by ``datasets`` with the audio left encoded."""
    stream = datasets.load_dataset(
        "parquet", data_files={"data": [str(f) for f in files]}, split="data", streaming=True
    )
    names = label_names(stream.features)
    if isinstance((stream.features or {}).get("audio"), datasets.Audio):
        stream = stream.cast_column("audio", datasets.Audio(decode=False))
    return stream, names


def parquet_split(
    settings: SpeechCommandsSettings, split: str, files: list[Path]
) -> Iterator[Clip]:
    """Word clips in file order, then the split's silence (1 s rows kept, recordings cut)."""
    rows, names = parquet_rows(files)
    speakers: list[str] = []
    recordings: list[tuple[str, np.ndarray]] = []
    short: list[tuple[str, np.ndarray]] = []
    for row in rows:
        word = names[row["label"]] if names is not None else str(row["label"])
        source, name = _row_audio(row, settings.root)
        if word == SILENCE_LABEL:
            wave = load_recording(source, name)
            (recordings if len(wave) > _LONG_RECORDING else short).append((name, wave))
            continue
        speaker = str(row.get("speaker_id") or NO_SPEAKER)
        speakers.append(speaker)
        yield Clip(load_clip(source, name), word, speaker, int(row.get("utterance_id") or 0), name)
    rng = silence_rng(settings, split)
    speaker_of = speaker_cycle(speakers, rng)
    for i, (name, wave) in enumerate(short):
        yield Clip(to_pcm16(fit_clip(wave)), SILENCE_LABEL, speaker_of(i), 0, name)
    count = round(settings.silence_fraction * len(speakers))
    shifted = lambda i: speaker_of(len(short) + i)  # noqa: E731 - continue the round robin
    yield from cut_silence(recordings, count, shifted, rng)


def _parquet_rows_total(files: Iterable[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


# ---------------------------------------------------------------------------------------------
# Building and loading
# ---------------------------------------------------------------------------------------------


def dataset_path(settings: SpeechCommandsSettings, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / DATASET_NAME / settings.cache_key()


def split_makers(
    settings: SpeechCommandsSettings,
) -> tuple[dict[str, Callable[[], Iterable[Clip]]], int]:
    """A fresh clip iterator per split, and the expected number of clips (for progress)."""
    if settings.resolved_layout() == "archive":
        entries = archive_entries(settings.root)
        total = sum(round(len(e) * (1 + settings.silence_fraction)) for e in entries.values())
        makers = {s: functools.partial(archive_split, settings, s, e) for s, e in entries.items()}
        return makers, total
    files = parquet_files(settings.root) or {}
    total = round(
        _parquet_rows_total(f for fs in files.values() for f in fs)
        * (1 + settings.silence_fraction)
    )
    return {
        s: functools.partial(parquet_split, settings, s, files[s]) for s in ("train", "test")
    }, total


def load_speech_commands(
    settings: SpeechCommandsSettings, cache_dir: str | Path, progress: ProgressFn | None = None
) -> datasets.DatasetDict:
    """Splits "train" and "test" in the synth-commands contract; converted on first use.

    Raises ScenarioError (naming ``data.path``) if the local copy is not where it should be.
    """
    settings.check_local_copy()
    final = dataset_path(settings, cache_dir)
    if not final.exists():
        makers, total = split_makers(settings)
        info = {
            "name": DATASET_NAME,
            "loader_version": SPEECH_COMMANDS_LOADER_VERSION,
            "layout": settings.resolved_layout(),
            "settings": settings.model_dump(
                mode="json", include=set(SpeechCommandsSettings.model_fields)
            ),
            "sample_rate": 16_000,
        }
        build_converted(final, makers, info, total, progress)
    dataset = load_converted(final)
    for name, split in dataset.items():
        if split.num_rows == 0:
            raise SimflError(f"{settings.root}: the {name} split has no clips")
    return dataset
