"""The feature store: features computed once per (dataset, settings), memory-mapped by readers.

Why: federated clients run as Ray actors, and each must read only its own rows, quickly,
without loading the whole dataset. Features are therefore computed once into
``<store>/features.npy`` (with ``meta.json`` saying what they are) and opened with
``np.load(mmap_mode="r")``; the OS page cache shares the bytes between actors. Readers copy
their rows out with ``pread`` (:meth:`FeatureStore.read`) rather than through the memmap, so
an actor's resident memory holds the rows it works on, not every page it ever touched. A store
is published atomically
(:func:`simfl.atomic.publish_directory`): readers see no store or a complete one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simfl.atomic import publish_directory
from simfl.data.logmel import log_mel, mel_filterbank
from simfl.data.settings import FEATURE_VERSION, FeatureSettings
from simfl.data.whisper_features import whisper_log_mel

#: Layout version of the on-disk store (``features.npy`` + ``meta.json``).
STORE_FORMAT_VERSION = 1

FEATURES_FILE = "features.npy"
META_FILE = "meta.json"

#: ``progress(rows_done, rows_total)``, called after each written batch.
ProgressFn = Callable[[int, int], None]


_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _pread_exactly(descriptor: int, buffer: memoryview, offset: int) -> None:
    """Fill ``buffer`` from ``offset`` (``pread`` may return fewer bytes than asked)."""
    while buffer.nbytes:
        got = os.preadv(descriptor, [buffer], offset)
        if got == 0:
            raise FeatureStoreError(f"features file ends before byte {offset}")
        buffer, offset = buffer[got:], offset + got


def _npy_layout(path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """An ``.npy`` file's dtype, row shape (all but the first axis) and data offset."""
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version not in readers:
            raise FeatureStoreError(f"{path}: unsupported .npy format {version}")
        shape, fortran_order, dtype = readers[version](handle)
        if fortran_order:
            raise FeatureStoreError(f"{path}: features are not stored C-ordered")
        return dtype, tuple(shape[1:]), handle.tell()


class FeatureStoreError(RuntimeError):
    """A store directory is invalid or does not match what the caller asked for."""


class FeatureStore:
    """Read-only view of ``features.npy`` [N, n_mels, frames] plus ``meta.json``.

    The memmap is opened lazily and is not pickled (only the directory is), so a store can
    be shipped to Ray actors without copying the features.
    """

    def __init__(self, directory: Path, meta: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.meta = meta
        self.settings = FeatureSettings.model_validate(meta["settings"])
        self._array: np.ndarray | None = None
        self._header: tuple[np.dtype, tuple[int, ...], int] | None = None

    # ---- opening / building

    @classmethod
    def open(cls, directory: Path | str) -> FeatureStore:
        """Open an existing store; raises FeatureStoreError if it is not a valid store."""
        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file() or not (directory / FEATURES_FILE).is_file():
            raise FeatureStoreError(f"{directory} is not a feature store (missing files)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != STORE_FORMAT_VERSION:
            raise FeatureStoreError(
                f"{directory}: unsupported store format {meta.get('format_version')}"
            )
        return cls(directory, meta)

    @classmethod
    def build(
        cls,
        batches: Iterable[np.ndarray],
        *,
        num_rows: int,
        settings: FeatureSettings,
        directory: Path | str,
        source_fingerprint: str | None = None,
        compute_batch_size: int = 512,
        progress: ProgressFn | None = None,
    ) -> FeatureStore:
        """Stream audio batches ([b, T] int16 or float, same T throughout) into a new store.

        If ``directory`` already exists it is opened and checked instead (cache hit; the
        iterable is not consumed). The store is written into a temporary sibling directory
        and renamed into place atomically; if another process finishes first, its store
        wins and ours is discarded.
        """
        directory = Path(directory)
        if not directory.exists():

            def fill(staging: Path) -> None:
                meta = _write_store(
                    staging, batches, num_rows, settings, compute_batch_size, progress
                )
                meta["source_fingerprint"] = source_fingerprint
                (staging / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))

            publish_directory(directory, fill)
        return _open_checked(directory, settings, num_rows, source_fingerprint)

    # ---- reading

    @property
    def array(self) -> np.ndarray:
        """The read-only memmap [N, n_mels, frames] in storage dtype."""
        if self._array is None:
            self._array = np.load(self.directory / FEATURES_FILE, mmap_mode="r")
        return self._array

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.meta["shape"])  # type: ignore[return-value]

    @property
    def source_fingerprint(self) -> str | None:
        return self.meta.get("source_fingerprint")

    def __len__(self) -> int:
        return int(self.meta["num_rows"])

    def read(self, indices: np.ndarray | Iterable[int]) -> np.ndarray:
        """Rows ``indices`` as float32 [len(indices), n_mels, frames], in the given order.

        Reads unique indices in sorted order (sequential access on the memmap), then
        scatters back, so duplicates and any order are fine.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"indices out of range for store of {n} rows")
        idx = np.where(idx < 0, idx + n, idx)
        unique, inverse = np.unique(idx, return_inverse=True)
        return self._pread_rows(unique).astype(np.float32, copy=False)[inverse]

    def _pread_rows(self, rows: np.ndarray) -> np.ndarray:
        """Sorted unique ``rows`` in storage dtype, one ``pread`` per run of consecutive rows.

        Why not ``self.array[rows]``: the pages a memmap touches count in the reader's RSS
        for as long as the map is open, so an actor that serves a client after client would
        come to hold the whole store (the W1 store is 323 MiB, in each actor). ``pread``
        copies from the same page cache and leaves nothing mapped.
        """
        dtype, row_shape, data_offset = self._layout()
        out = np.empty((len(rows), *row_shape), dtype=dtype)
        if not len(rows):
            return out
        row_bytes = out[0].nbytes
        flat = out.reshape(len(rows), -1).view(np.uint8)
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)  # where a run begins
        ends = np.append(starts[1:], len(rows))
        descriptor = os.open(self.directory / FEATURES_FILE, os.O_RDONLY | _O_CLOEXEC)
        try:
            for begin, end in zip(starts.tolist(), ends.tolist(), strict=True):
                buffer = memoryview(flat[begin:end]).cast("B")
                offset = data_offset + int(rows[begin]) * row_bytes
                _pread_exactly(descriptor, buffer, offset)
        finally:
            os.close(descriptor)
        return out

    def _layout(self) -> tuple[np.dtype, tuple[int, ...], int]:
        """The ``.npy`` file's dtype, row shape and where its data begins (from its header)."""
        if self._header is None:
            self._header = _npy_layout(self.directory / FEATURES_FILE)
        return self._header

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "meta": self.meta}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.directory = state["directory"]
        self.meta = state["meta"]
        self.settings = FeatureSettings.model_validate(self.meta["settings"])
        self._array = None
        self._header = None

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.directory)!r}, shape={self.shape})"


def _write_store(
    staging: Path,
    batches: Iterable[np.ndarray],
    num_rows: int,
    settings: FeatureSettings,
    compute_batch_size: int,
    progress: ProgressFn | None,
) -> dict[str, Any]:
    """Compute features batch by batch into ``staging/features.npy``; return the metadata."""
    if num_rows <= 0:
        raise ValueError(f"num_rows must be positive, got {num_rows}")
    compute = _feature_function(settings)
    out: np.ndarray | None = None
    num_samples = -1
    done = 0
    for batch in batches:
        batch = _check_batch(batch, num_samples)
        if out is None:
            num_samples = batch.shape[1]
            shape = (num_rows, settings.n_mels, settings.num_frames(num_samples))
            out = np.lib.format.open_memmap(
                staging / FEATURES_FILE, mode="w+", dtype=settings.dtype, shape=shape
            )
        if done + len(batch) > num_rows:
            raise ValueError(f"audio has more than num_rows={num_rows} rows")
        for start in range(0, len(batch), compute_batch_size):
            chunk = torch.from_numpy(batch[start : start + compute_batch_size])
            feats = compute(chunk)
            out[done : done + len(feats)] = feats
            done += len(feats)
        if progress is not None:
            progress(done, num_rows)
    if out is None or done != num_rows:
        raise ValueError(f"audio has {done} rows, expected num_rows={num_rows}")
    out.flush()
    del out
    return {
        "format_version": STORE_FORMAT_VERSION,
        "feature_version": FEATURE_VERSION,
        "cache_key": settings.cache_key(),
        "settings": settings.model_dump(mode="json"),
        "num_rows": num_rows,
        "num_samples": num_samples,
        "shape": [num_rows, settings.n_mels, settings.num_frames(num_samples)],
        "dtype": settings.dtype,
    }


def _check_batch(batch: np.ndarray, num_samples: int) -> np.ndarray:
    batch = np.asarray(batch)
    if batch.ndim != 2:
        raise ValueError(f"audio batches must be [b, T], got shape {batch.shape}")
    if batch.dtype != np.int16 and not np.issubdtype(batch.dtype, np.floating):
        raise TypeError(f"audio must be int16 PCM or floating point, got {batch.dtype}")
    if num_samples >= 0 and batch.shape[1] != num_samples:
        raise ValueError(f"all clips must have the same length: {batch.shape[1]} != {num_samples}")
    if not batch.flags.writeable:  # e.g. zero-copy Arrow buffers; torch wants writable
        batch = batch.copy()
    return np.ascontiguousarray(batch)


def _open_checked(
    directory: Path, settings: FeatureSettings, num_rows: int, source_fingerprint: str | None
) -> FeatureStore:
    """Open a cached store and refuse it if it was built from other settings or data."""
    store = FeatureStore.open(directory)
    if store.meta.get("cache_key") != settings.cache_key() or store.settings != settings:
        raise FeatureStoreError(f"{directory} holds features for other settings: {store.settings}")
    if len(store) != num_rows:
        raise FeatureStoreError(f"{directory} holds {len(store)} rows, expected {num_rows}")
    cached_fp = store.source_fingerprint
    if source_fingerprint and cached_fp and cached_fp != source_fingerprint:
        raise FeatureStoreError(
            f"{directory} was built from source {cached_fp}, not {source_fingerprint}"
        )
    return store


def _feature_function(settings: FeatureSettings) -> Callable[[torch.Tensor], np.ndarray]:
    """audio batch [B, T] -> features [B, n_mels, frames] for these settings."""
    if settings.kind == "whisper":
        return lambda chunk: whisper_log_mel(chunk, settings)
    fb = mel_filterbank(settings)
    return lambda chunk: log_mel(chunk, settings, filterbank=fb).numpy()
