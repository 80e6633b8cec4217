"""Recognizing a user's local copy of a real dataset, and fingerprinting its files.

Why a module of its own: the settings schema keys the converted-dataset cache on the layout and
on the files' stats, and it must stay light (standard library only), while the converters that
read the audio need ``datasets``, soundfile and pandas. The layouts are described in
:mod:`simfl.data.speech_commands` and :mod:`simfl.data.audiofolder`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

Layout = Literal["archive", "parquet"]

# --- any copy --------------------------------------------------------------------------------


def files_fingerprint(root: Path, files: Iterable[Path]) -> str:
    """Hash of (relative path, size, mtime) of ``files``: a changed source gets a new cache key."""
    digest = hashlib.sha256()
    for path in sorted(files):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


# --- speech-commands -------------------------------------------------------------------------

LISTS = {"validation": "validation_list.txt", "test": "testing_list.txt"}


def is_archive(root: Path) -> bool:
    return all((root / name).is_file() for name in LISTS.values())


def parquet_files(root: Path) -> dict[str, list[Path]] | None:
    """{"train": [...], "test": [...]} under ``root`` or ``root/v0.02``; None if either is missing.

    Accepts the converter's ``<split>/NNNN.parquet`` (also ``partial-<split>/``) and the older
    flat ``*-<split>-NNNNN-of-NNNNN.parquet`` names.
    """
    for base in (root / "v0.02", root):
        found = {split: _split_parquet(base, split) for split in ("train", "test")}
        if all(found.values()):
            return found
    return None


def _split_parquet(base: Path, split: str) -> list[Path]:
    nested = [*base.glob(f"{split}/*.parquet"), *base.glob(f"partial-{split}/*.parquet")]
    flat = [*base.glob(f"*-{split}-*.parquet"), *base.glob(f"{split}-*.parquet")]
    return sorted(nested or flat)


def resolve_layout(root: Path, layout: str) -> Layout:
    """Check ``layout`` against ``root`` (or detect it); ValueError naming what is missing."""
    archive, parquet = is_archive(root), parquet_files(root) is not None
    if layout == "archive" and not archive:
        raise ValueError(
            f"data.path {root} has no {' and '.join(LISTS.values())}: not an extracted "
            "speech_commands_v0.02 archive (data.layout = 'archive')"
        )
    if layout == "parquet" and not parquet:
        raise ValueError(
            f"data.path {root} has no [v0.02/]train/*.parquet and test/*.parquet: not the "
            "Parquet conversion of google/speech_commands (data.layout = 'parquet')"
        )
    if layout in ("archive", "parquet"):
        return layout  # type: ignore[return-value]
    if archive:
        return "archive"
    if parquet:
        return "parquet"
    raise ValueError(
        f"data.path {root} is neither an extracted speech_commands_v0.02 archive "
        f"({', '.join(LISTS.values())}, <word>/*.wav) nor its Parquet conversion "
        "([v0.02/]train/*.parquet, test/*.parquet); allowed data.layout: auto, archive, parquet"
    )


@functools.lru_cache(maxsize=16)
def source_fingerprint(root: str, layout: Layout) -> str:
    """Stats of every file the conversion reads (cached: a full archive has 105,000 files)."""
    base = Path(root)
    if layout == "parquet":
        found = parquet_files(base) or {}
        files: Iterable[Path] = [f for split in found.values() for f in split]
    else:
        files = [*base.glob("*/*.wav"), *(base / name for name in LISTS.values())]
    return files_fingerprint(base, files)


# --- audiofolder -----------------------------------------------------------------------------

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
SPLIT_NAMES = {
    "train": ("train", "training"),
    "test": ("test", "testing", "eval", "evaluation"),
}
METADATA_FILES = ("metadata.csv", "metadata.jsonl")


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
