"""Atomic writes: a reader sees the old file (or directory) or the new one, never half of one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # synthesis workers import this module: keep it light
    import pandas as pd


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Let ``write`` fill a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; results are shared files
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def publish_directory(final: Path, fill: Callable[[Path], None]) -> None:
    """Let ``fill`` build a temporary sibling directory, then rename it to ``final``.

    A reader sees no directory or a complete one. If another process published ``final``
    first, its copy wins and ours is discarded (the rename is atomic, the contents equal).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
    try:
        fill(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_table(path_stem: Path, frame: pd.DataFrame) -> None:
    """The same table as Parquet (for pandas/W&B) and CSV (for eyes and spreadsheets)."""
    write_atomically(
        path_stem.with_suffix(".parquet"), lambda tmp: frame.to_parquet(tmp, index=False)
    )
    write_atomically(path_stem.with_suffix(".csv"), lambda tmp: frame.to_csv(tmp, index=False))
