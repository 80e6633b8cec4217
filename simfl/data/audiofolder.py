"""``audiofolder``: any keyword dataset laid out as ``datasets``' audiofolder, from a local path.

Layout (the same conventions as ``datasets.load_dataset("audiofolder")``): ``<split>/<label>/
<file>`` with split directories ``train`` (or ``training``) and ``test`` (or ``testing``, ``eval``,
``evaluation``; ``validation``/``valid``/``dev`` are ignored), the label being the file's
parent directory; an optional ``metadata.csv`` or ``metadata.jsonl`` in a split directory (or at
the top) whose ``file_name`` column is relative to the metadata file, with extra columns such as
``speaker_id`` and ``accent``. A ``_silence_`` label is the silence class of the 12-class view.

Why the directory is read here and not by ``load_dataset("audiofolder")``: in ``datasets`` 4
(checked with 4.8) the builder encodes every file through ``Audio.encode_example``, which
imports torchcodec even for a plain path and even with ``Audio(decode=False)``, so loading fails
without torchcodec and FFmpeg. Reading the files with soundfile keeps real data free of both.

Clips are decoded, resampled to 16 kHz, cut or zero-padded to 1 s. Without a speaker column the
speaker comes from a Speech Commands style name (``<speaker>_nohash_<n>.wav``) or is "unknown"
(a speaker partition of such data then says it has one speaker).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import datasets
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simfl.data.audio_io import load_clip
from simfl.data.converted import (
    UNKNOWN_ACCENT,
    Clip,
    ProgressFn,
    build_converted,
    files_fingerprint,
    load_converted,
)

LOADER_VERSION = 1
DATASET_NAME = "audiofolder"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
SPLIT_NAMES = {
    "train": ("train", "training"),
    "test": ("test", "testing", "eval", "evaluation"),
}
METADATA_FILES = ("metadata.csv", "metadata.jsonl")
UNKNOWN_SPEAKER = "unknown"
_SC_NAME = re.compile(r"^(?P<speaker>[^_/]+)_nohash_(?P<take>\d+)\.")


class AudioFolderSettings(BaseModel):
    """Where the folder is and which metadata columns hold speakers and accents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1)
    speaker_column: str = "speaker_id"
    accent_column: str = "accent"

    @field_validator("path")
    @classmethod
    def _path_is_a_directory(cls, path: str) -> str:
        if not Path(path).expanduser().is_dir():
            raise ValueError(f"no such directory: {path} (point it at your audiofolder)")
        return path

    @model_validator(mode="after")
    def _has_train_and_test(self) -> AudioFolderSettings:
        split_dirs(self.root)
        return self

    @property
    def root(self) -> Path:
        return Path(self.path).expanduser().resolve()

    def cache_key(self) -> str:
        payload = {
            "loader": LOADER_VERSION,
            **self.model_dump(mode="json", include=set(AudioFolderSettings.model_fields)),
            "path": str(self.root),
            "files": folder_fingerprint(str(self.root)),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def split_dirs(root: Path) -> dict[str, Path]:
    """{"train": dir, "test": dir}; ValueError naming the expected directories otherwise."""
    found = {}
    for split, names in SPLIT_NAMES.items():
        matches = [root / n for n in names if (root / n).is_dir()]
        if not matches:
            raise ValueError(
                f"data.path {root} has no {split} split directory (one of {', '.join(names)}) "
                "holding <label>/<audio file>"
            )
        found[split] = matches[0]
    return found


def audio_files(split_dir: Path) -> list[Path]:
    """Audio files at ``<split>/<label>/...``, sorted; hidden files are skipped."""
    return sorted(
        p
        for p in split_dir.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES
        and p.parent != split_dir
        and not any(part.startswith(".") for part in p.relative_to(split_dir).parts)
    )


@functools.lru_cache(maxsize=16)
def folder_fingerprint(root: str) -> str:
    base = Path(root)
    files = [p for d in split_dirs(base).values() for p in audio_files(d)]
    files += [p for p in base.rglob("metadata.*") if p.name in METADATA_FILES]
    return files_fingerprint(base, files)


def read_metadata(root: Path, split_dir: Path) -> pd.DataFrame:
    """Metadata rows indexed by absolute file path (empty if there is no metadata file)."""
    tables = []
    for directory in (root, split_dir):
        for name in METADATA_FILES:
            path = directory / name
            if not path.is_file():
                continue
            table = pd.read_csv(path) if name.endswith(".csv") else pd.read_json(path, lines=True)
            if "file_name" not in table:
                raise ValueError(f"{path}: metadata needs a 'file_name' column")
            table.index = [str((directory / f).resolve()) for f in table.pop("file_name")]
            tables.append(table)
    return pd.concat(tables) if tables else pd.DataFrame()


def _meta_value(meta: pd.DataFrame, key: str, column: str) -> str | None:
    if column not in meta.columns or key not in meta.index:
        return None
    value = meta.at[key, column]
    return None if pd.isna(value) else str(value)


def folder_split(settings: AudioFolderSettings, split_dir: Path) -> Iterator[Clip]:
    """Every audio file of one split directory, in path order."""
    root = settings.root
    meta = read_metadata(root, split_dir)
    for path in audio_files(split_dir):
        key = str(path.resolve())
        name_match = _SC_NAME.match(path.name)
        speaker = _meta_value(meta, key, settings.speaker_column) or (
            name_match["speaker"] if name_match else UNKNOWN_SPEAKER
        )
        accent = _meta_value(meta, key, settings.accent_column) or UNKNOWN_ACCENT
        take = int(name_match["take"]) if name_match else 0
        rel = str(path.relative_to(root))
        yield Clip(load_clip(path, rel), path.parent.name, speaker, take, rel, accent)


def dataset_path(settings: AudioFolderSettings, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / DATASET_NAME / settings.cache_key()


def load_audiofolder(
    settings: AudioFolderSettings, cache_dir: str | Path, progress: ProgressFn | None = None
) -> datasets.DatasetDict:
    """Splits "train" and "test" in the synth-commands contract; converted on first use."""
    final = dataset_path(settings, cache_dir)
    if not final.exists():
        dirs = split_dirs(settings.root)
        makers: dict[str, Callable[[], Iterable[Clip]]] = {
            s: functools.partial(folder_split, settings, d) for s, d in dirs.items()
        }
        total = sum(len(audio_files(d)) for d in dirs.values())
        info = {
            "name": DATASET_NAME,
            "loader_version": LOADER_VERSION,
            "settings": settings.model_dump(
                mode="json", include=set(AudioFolderSettings.model_fields)
            ),
            "sample_rate": 16_000,
        }
        build_converted(final, makers, info, total, progress)
    return load_converted(final)
