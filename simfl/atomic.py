"""Atomic, durable writes: a reader sees the old file (or directory) or the new one, never half.

Every file simfl publishes goes through here: run results, sweep manifests, reports, feature
stores, client indices, per-client state and synthesized or converted datasets. Why one module:
the write-to-a-temporary-then-rename recipe has three easy-to-miss details, done once here:

- durability: the data is fsynced before the rename and the parent directory after it, so a
  power cut cannot leave a renamed but empty file;
- permissions: temporaries are created with ``os.open(..., O_CREAT | O_EXCL, 0o666)`` (or
  ``os.mkdir(..., 0o777)``), so the kernel applies the process umask; ``tempfile`` would make
  private 0600/0700 files, and reading the umask with ``os.umask`` races with other threads;
- races: when two processes publish the same directory, the first rename wins and the second
  publisher quietly discards its copy (both are built from the same inputs).

A full disk (ENOSPC, EDQUOT, EFBIG) while writing raises
:class:`~simfl.errors.ResultsWriteError`, one line naming the file as it would have been
published: nothing half-written is left in place, so the caller can stop and resume later.

Imports only the standard library and :mod:`simfl.errors` (pandas for typing only): synthesis
workers import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simfl.errors import ResultsWriteError, disk_full_cause

if TYPE_CHECKING:
    import pandas as pd

_ATTEMPTS = 100  # random names collide only if something else is creating the same names


def write_atomically(path: Path, write_fn: Callable[[Path], None]) -> None:
    """Let ``write_fn`` fill a temporary file beside ``path``, then rename it into place.

    The temporary exists (empty) when ``write_fn`` gets it; if ``write_fn`` raises, it is
    removed and ``path`` keeps its old content.
    """
    with reporting_full_disk(path):
        path, temporary = _beside(path, _new_temporary_file)
        try:
            write_fn(temporary)
            _fsync(temporary)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync(path.parent)


@contextlib.contextmanager
def reporting_full_disk(path: Path) -> Iterator[None]:
    """Raise a full disk met inside the block as :class:`~simfl.errors.ResultsWriteError`
    naming ``path``, wherever the ``OSError`` is in the chain of errors (a library may wrap
    it); any other error goes on unchanged."""
    before = sys.exception()  # a failure being handled already is no cause of ours
    try:
        yield
    except ResultsWriteError:
        raise
    except Exception as error:
        cause = disk_full_cause(error, before)
        if cause is None:
            raise
        raise ResultsWriteError(path, cause) from error


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, data: Any) -> None:
    """Indented JSON in insertion order; values JSON does not know are written as ``str``."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_table(path_stem: Path, frame: pd.DataFrame) -> None:
    """The same table as Parquet (for pandas/W&B) and CSV (for eyes and spreadsheets)."""
    path_stem = Path(path_stem)
    write_atomically(
        path_stem.with_suffix(".parquet"), lambda tmp: frame.to_parquet(tmp, index=False)
    )
    write_atomically(path_stem.with_suffix(".csv"), lambda tmp: frame.to_csv(tmp, index=False))


def append_line(path: Path, line: str) -> None:
    """Append one line to ``path`` durably: written with ``O_APPEND``, then fsynced.

    For files that grow by a record at a time (metrics per round): nothing already written is
    rewritten, so a crash can at worst leave a torn last line, which
    :func:`read_complete_lines` leaves out, and a full disk leaves the file as it was. A new
    file's directory entry is fsynced too.
    """
    path = Path(path)
    if "\n" in line:
        raise ValueError("append_line writes exactly one line")
    with reporting_full_disk(path):
        created = not path.exists()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        descriptor = os.open(path, flags, 0o666)
        try:
            _append_whole(descriptor, (line + "\n").encode())
        finally:
            os.close(descriptor)
        if created:
            _fsync(path.parent)


def _append_whole(descriptor: int, data: bytes) -> None:
    """Append all of ``data`` durably, or none of it: a disk that fills up mid-line makes a
    short write, and the part written is cut off again, so the file keeps complete lines."""
    start = os.fstat(descriptor).st_size  # where O_APPEND puts it: we are the only writer
    remaining = memoryview(data)
    try:
        while remaining:
            remaining = remaining[os.write(descriptor, remaining) :]
        os.fsync(descriptor)
    except BaseException:
        with contextlib.suppress(OSError):  # shrinking a file needs no space
            os.ftruncate(descriptor, start)
        raise


def read_complete_lines(path: Path) -> list[str]:
    """The lines of ``path`` that end in a newline (a torn last line is not one of them)."""
    text = Path(path).read_text()
    return text.split("\n")[:-1]


def fsync_directory(path: Path) -> None:
    """Flush a directory's entries (after creating, linking or removing files in it)."""
    _fsync(Path(path))


def publish_directory(final: Path, fill_fn: Callable[[Path], None]) -> bool:
    """Let ``fill_fn`` fill an empty temporary sibling directory, then rename it to ``final``.

    A reader sees no directory or a complete one. Returns True if ours was published, False if
    another process published ``final`` first: its copy wins and ours is discarded. If
    ``fill_fn`` raises, nothing is left behind; a full disk names the file as published.
    """
    with reporting_full_disk(final):
        final, staging = _beside(final, _new_temporary_directory)
        try:
            with _named_as_published(staging, final):
                fill_fn(staging)
                _fsync_tree(staging)
            try:
                os.rename(staging, final)
            except OSError:
                if not final.exists():
                    raise
                return False  # lost the race: a complete directory is already in place
            _fsync(final.parent)
            return True
        finally:
            shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _named_as_published(staging: Path, final: Path) -> Iterator[None]:
    """A full disk while filling ``staging``, reported under the name the file would have had
    in ``final`` (the staging directory's name means nothing to a user)."""
    before = sys.exception()
    try:
        yield
    except Exception as error:
        cause = disk_full_cause(error, before)
        if cause is None:
            raise
        named = [getattr(error, "path", None), cause.filename, cause.filename2]
        inside = [Path(n) for n in named if n and Path(n).is_relative_to(staging)]
        name = final / inside[0].relative_to(staging) if inside else final
        raise ResultsWriteError(name, cause) from error


def _beside(path: Path, make_temporary: Callable[[Path], Path]) -> tuple[Path, Path]:
    """``path`` as a Path, with its parent created, and a new temporary sibling of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, make_temporary(path)


def _new_temporary_file(path: Path) -> Path:
    """An empty hidden file beside ``path``, with the mode the umask gives new files."""
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        candidate = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(candidate, flags, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name beside {path}")


def _new_temporary_directory(final: Path) -> Path:
    """An empty hidden directory beside ``final``, with the mode the umask gives directories."""
    for _ in range(_ATTEMPTS):
        candidate = final.parent / f".{final.name}.tmp-{secrets.token_hex(8)}"
        try:
            os.mkdir(candidate, 0o777)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name beside {final}")


def _fsync(path: Path) -> None:
    """Flush a file's data, or a directory's entries, to the disk."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) * path.is_dir())
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root``, children before their directory."""
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            _fsync(Path(directory, name))
        _fsync(Path(directory))
