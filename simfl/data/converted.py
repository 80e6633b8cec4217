"""Real datasets converted once into the synth-commands contract and cached as Arrow files.

Why convert: features, views and partitioners read one shape of data (an int16 ``audio`` column
of 1 s clips at 16 kHz plus ``word``, ``speaker_id``, ``accent`` metadata); decoding 100,000 WAV
files or Parquet blobs on every run would cost more than the features. A converted dataset is a
directory ``<cache>/<source>/<key>/`` with ``train.arrow`` and ``test.arrow`` (Arrow IPC streams,
the format ``datasets`` memory-maps) and ``source.json``; it is written into a temporary sibling
and renamed into place, so an interrupted conversion leaves nothing that looks complete.

Clips are streamed to disk in batches: the real Speech Commands train split is 2.7 GB of audio.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa

from simfl.atomic import publish_directory
from simfl.data.clip_format import CLIP_SAMPLES

SPLITS = ("train", "test")
INFO_FILE = "source.json"
UNKNOWN_ACCENT = "unknown"
_BATCH = 512

#: ``progress(done, total)`` over the clips of all splits.
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Clip:
    """One converted clip: int16 audio of CLIP_SAMPLES and where it came from."""

    audio: np.ndarray
    word: str
    speaker_id: str
    take: int
    file: str
    accent: str = UNKNOWN_ACCENT


def clip_features() -> datasets.Features:
    """The converted schema: synth-commands' columns minus ``voice``, plus the source ``file``."""
    return datasets.Features(
        {
            "audio": datasets.Sequence(datasets.Value("int16")),
            "word": datasets.Value("string"),
            "speaker_id": datasets.Value("string"),
            "accent": datasets.Value("string"),
            "take": datasets.Value("int32"),
            "file": datasets.Value("string"),
        }
    )


def _batch_table(clips: list[Clip], schema: pa.Schema) -> pa.Table:
    offsets = pa.array(np.arange(len(clips) + 1, dtype=np.int32) * CLIP_SAMPLES)
    audio = pa.ListArray.from_arrays(offsets, pa.array(np.concatenate([c.audio for c in clips])))
    columns = {
        "audio": audio,
        "word": pa.array([c.word for c in clips], pa.string()),
        "speaker_id": pa.array([c.speaker_id for c in clips], pa.string()),
        "accent": pa.array([c.accent for c in clips], pa.string()),
        "take": pa.array([c.take for c in clips], pa.int32()),
        "file": pa.array([c.file for c in clips], pa.string()),
    }
    return pa.table(columns).cast(schema)


def write_split(clips: Iterable[Clip], path: Path, progress: Callable[[int], None]) -> int:
    """Stream ``clips`` into an Arrow IPC file at ``path``; returns the number written."""
    schema = clip_features().arrow_schema
    written = 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in _batches(clips):
            for clip in batch:
                if clip.audio.dtype != np.int16 or clip.audio.shape != (CLIP_SAMPLES,):
                    raise ValueError(f"{clip.file}: expected {CLIP_SAMPLES} int16 samples")
            writer.write_table(_batch_table(batch, schema))
            written += len(batch)
            progress(len(batch))
    return written


def _batches(clips: Iterable[Clip]) -> Iterator[list[Clip]]:
    batch: list[Clip] = []
    for clip in clips:
        batch.append(clip)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def build_converted(
    final: Path,
    splits: dict[str, Callable[[], Iterable[Clip]]],
    info: dict[str, Any],
    total: int,
    progress: ProgressFn | None = None,
) -> Path:
    """Write every split (each from a fresh clip iterator) into ``final``, atomically."""
    if final.exists():
        return final
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(min(done, total), max(total, done))

    def fill(tmp: Path) -> None:
        counts = {
            name: write_split(make(), tmp / f"{name}.arrow", advance)
            for name, make in splits.items()
        }
        (tmp / INFO_FILE).write_text(json.dumps({**info, "rows": counts}, indent=2, sort_keys=True))

    publish_directory(final, fill)
    return final


def load_converted(final: Path) -> datasets.DatasetDict:
    """The converted splits, memory-mapped (nothing is read until used)."""
    description = (final / INFO_FILE).read_text()
    splits = {}
    for name in SPLITS:
        info = datasets.DatasetInfo(description=description, features=clip_features())
        splits[name] = datasets.Dataset.from_file(
            str(final / f"{name}.arrow"), info=info, split=name
        )
    return datasets.DatasetDict(splits)
