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
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import datasets
import pandas as pd

from simfl.data.audio_io import load_clip
from simfl.data.converted import UNKNOWN_ACCENT, Clip, ProgressFn, build_converted, load_converted
from simfl.data.local_copies import METADATA_FILES, audio_files, split_dirs
from simfl.data.local_settings import AUDIOFOLDER_LOADER_VERSION, AudioFolderSettings

DATASET_NAME = "audiofolder"
UNKNOWN_SPEAKER = "unknown"
_SC_NAME = re.compile(r"^(?P<speaker>[^_/]+)_nohash_(?P<take>\d+)\.")


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
    """Splits "train" and "test" in the synth-commands contract; converted on first use.

    Raises ScenarioError (naming ``data.path``) if the folder is missing or lacks a split.
    """
    settings.check_local_copy()
    final = dataset_path(settings, cache_dir)
    if not final.exists():
        dirs = split_dirs(settings.root)
        makers: dict[str, Callable[[], Iterable[Clip]]] = {
            s: functools.partial(folder_split, settings, d) for s, d in dirs.items()
        }
        total = sum(len(audio_files(d)) for d in dirs.values())
        info = {
            "name": DATASET_NAME,
            "loader_version": AUDIOFOLDER_LOADER_VERSION,
            "settings": settings.model_dump(
                mode="json", include=set(AudioFolderSettings.model_fields)
            ),
            "sample_rate": 16_000,
        }
        build_converted(final, makers, info, total, progress)
    return load_converted(final)
