"""Log-mel features, computed once and kept in a cached, memory-mapped store.

Federated clients run as Ray actors: each must read only its own rows, quickly, without
loading the whole dataset. Features are therefore computed once per (dataset, settings)
into ``features.npy`` and opened with ``np.load(mmap_mode="r")``; the OS page cache shares
the bytes between actors and each actor touches only the pages of its rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Bump when the feature computation changes, so stale caches get a new key.
FEATURE_VERSION = 1
#: Layout version of the on-disk store (``features.npy`` + ``meta.json``).
STORE_FORMAT_VERSION = 1

FEATURES_FILE = "features.npy"
META_FILE = "meta.json"
LOG_EPS = 1e-6
INT16_SCALE = 1.0 / 32768.0

#: ``progress(rows_done, rows_total)``, called after each written batch.
ProgressFn = Callable[[int, int], None]


#: Whisper's front end (WhisperFeatureExtractor's defaults): 25 ms windows, 10 ms hop, 16 kHz.
WHISPER_DEFAULTS: dict[str, Any] = {
    "n_mels": 80,
    "n_fft": 400,
    "win_length": 400,
    "hop_length": 160,
    "f_min": 0.0,
    "f_max": 8000.0,
    "sample_rate": 16000,
    "frames": 100,
}


class FeatureSettings(BaseModel):
    """Log-mel parameters; defaults are 40 mels, 30 ms windows, 10 ms hop at 16 kHz.

    ``kind = "whisper"`` computes Whisper's own normalized log-mels with transformers'
    ``WhisperFeatureExtractor`` (built offline, no hub) over the first ``frames`` 10 ms frames
    (100 = 1 s) instead of Whisper's 30 s window; unset keys take Whisper's values
    (:data:`WHISPER_DEFAULTS`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["log-mel", "whisper"] = "log-mel"
    frames: int | None = Field(None, ge=2, le=3000)
    n_mels: int = Field(40, gt=0)
    n_fft: int = Field(480, gt=0)
    win_length: int = Field(480, gt=0)
    hop_length: int = Field(160, gt=0)
    f_min: float = Field(20.0, ge=0.0)
    f_max: float = Field(7600.0, gt=0.0)
    sample_rate: int = Field(16000, gt=0)
    dtype: Literal["float16", "float32"] = "float16"

    @model_validator(mode="before")
    @classmethod
    def _whisper_defaults(cls, data: Any) -> Any:
        """Whisper features default to Whisper's front end, not to the KWS log-mel one."""
        if isinstance(data, dict) and data.get("kind") == "whisper":
            return {**WHISPER_DEFAULTS, **data}
        return data

    @model_validator(mode="after")
    def _check_consistency(self) -> FeatureSettings:
        if self.kind == "whisper":
            return self._check_whisper()
        if self.frames is not None:
            raise ValueError('frames applies to kind = "whisper" only')
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        if self.f_max > self.sample_rate / 2:
            raise ValueError(f"f_max ({self.f_max}) must be <= sample_rate/2")
        if self.f_min >= self.f_max:
            raise ValueError(f"f_min ({self.f_min}) must be < f_max ({self.f_max})")
        empty = np.flatnonzero(_mel_filterbank_np(self).max(axis=0) == 0.0)
        if empty.size:
            raise ValueError(
                f"mel filters {empty.tolist()} cover no FFT bin; use fewer n_mels or larger n_fft"
            )
        return self

    def _check_whisper(self) -> FeatureSettings:
        """WhisperFeatureExtractor fixes everything but the mel count and the kept frames."""
        fixed = {k: v for k, v in WHISPER_DEFAULTS.items() if k not in ("n_mels", "frames")}
        changed = [k for k, v in fixed.items() if getattr(self, k) != v]
        if changed:
            raise ValueError(
                f'kind = "whisper" fixes {", ".join(changed)} to Whisper\'s values '
                f"({', '.join(f'{k}={fixed[k]}' for k in changed)}); leave them out"
            )
        if self.n_mels not in (80, 128):
            raise ValueError(f'kind = "whisper" takes n_mels 80 or 128, got {self.n_mels}')
        return self

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        """Frames per clip: the centered STFT's count, or ``frames`` for Whisper features."""
        if self.kind == "whisper":
            return int(self.frames)  # type: ignore[arg-type]
        return 1 + num_samples // self.hop_length

    def cache_key(self) -> str:
        """Short stable hash of the settings and FEATURE_VERSION, for cache directory names.

        ``kind`` and ``frames`` enter the key only for Whisper features, so the keys (and
        caches) of log-mel settings are those from before Whisper features existed.
        """
        settings = self.model_dump(mode="json")
        if self.kind == "log-mel":
            del settings["kind"], settings["frames"]
        payload = json.dumps({"feature_version": FEATURE_VERSION, **settings}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- computation


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def _mel_filterbank_np(settings: FeatureSettings) -> np.ndarray:
    """Triangular HTK-mel filters, [n_freqs, n_mels], float64, no area normalization."""
    all_freqs = np.linspace(0.0, settings.sample_rate // 2, settings.n_freqs)
    m_pts = np.linspace(_hz_to_mel(settings.f_min), _hz_to_mel(settings.f_max), settings.n_mels + 2)
    f_pts = _mel_to_hz(m_pts)
    f_diff = np.diff(f_pts)  # [n_mels + 1]
    slopes = f_pts[None, :] - all_freqs[:, None]  # [n_freqs, n_mels + 2]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


def mel_filterbank(settings: FeatureSettings) -> torch.Tensor:
    """Mel filterbank [n_freqs, n_mels] (float32).

    Same semantics as ``torchaudio.functional.melscale_fbanks(..., norm=None,
    mel_scale="htk")``, which cannot be used here since torchaudio does not load.
    """
    return torch.from_numpy(_mel_filterbank_np(settings)).to(torch.float32)


def _to_float_audio(audio: torch.Tensor) -> torch.Tensor:
    if audio.dtype == torch.int16:
        return audio.to(torch.float32) * INT16_SCALE
    if audio.is_floating_point():
        return audio.to(torch.float32)
    raise TypeError(f"audio must be int16 PCM or floating point, got {audio.dtype}")


def log_mel(
    audio: torch.Tensor, settings: FeatureSettings, filterbank: torch.Tensor | None = None
) -> torch.Tensor:
    """Log-mel spectrogram of a batch: [B, T] int16 or float -> float32 [B, n_mels, frames].

    int16 input is scaled by 1/32768. Centered STFT (reflect padding) with a periodic Hann
    window, power spectrum, mel projection, then ``log(mel + 1e-6)``. Pass ``filterbank``
    (from :func:`mel_filterbank`) to avoid rebuilding it for every batch.
    """
    if audio.ndim != 2:
        raise ValueError(f"audio must be [B, T], got shape {tuple(audio.shape)}")
    wave = _to_float_audio(audio)
    fb = mel_filterbank(settings) if filterbank is None else filterbank
    window = torch.hann_window(settings.win_length, dtype=torch.float32, device=wave.device)
    spec = torch.stft(
        wave,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        win_length=settings.win_length,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )  # [B, n_freqs, frames]
    power = spec.real.square() + spec.imag.square()
    mel = torch.matmul(fb.to(wave.device).T, power)  # [B, n_mels, frames]
    return torch.log(mel + LOG_EPS)


def whisper_log_mel(audio: torch.Tensor, settings: FeatureSettings) -> np.ndarray:
    """Whisper's normalized log-mels of ``settings.frames`` frames: [B, T] -> [B, n_mels, frames].

    The extractor pads or cuts every clip to ``frames`` hops (not 30 s): Whisper's log-mels are
    clamped to 8 below the clip's maximum, which silence padding never raises, so the frames
    equal the first ``frames`` of the 30 s features (checked in the tests).
    """
    from transformers import WhisperFeatureExtractor

    extractor = _whisper_extractor(WhisperFeatureExtractor, settings.n_mels)
    wave = _to_float_audio(audio).numpy()
    out = extractor(
        list(wave),
        sampling_rate=settings.sample_rate,
        max_length=int(settings.frames) * settings.hop_length,  # type: ignore[arg-type]
        return_tensors="np",
    )["input_features"]
    return np.asarray(out, dtype=np.float32)


_EXTRACTORS: dict[int, Any] = {}


def _whisper_extractor(cls: Any, n_mels: int) -> Any:
    """One offline WhisperFeatureExtractor per mel count (building its filterbank is slow)."""
    if n_mels not in _EXTRACTORS:
        _EXTRACTORS[n_mels] = cls(feature_size=n_mels)
    return _EXTRACTORS[n_mels]


def feature_function(settings: FeatureSettings) -> Callable[[torch.Tensor], np.ndarray]:
    """audio batch [B, T] -> features [B, n_mels, frames] for these settings."""
    if settings.kind == "whisper":
        return lambda chunk: whisper_log_mel(chunk, settings)
    fb = mel_filterbank(settings)
    return lambda chunk: log_mel(chunk, settings, filterbank=fb).numpy()


# --------------------------------------------------------------------------- store


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
        if directory.exists():
            return _open_checked(directory, settings, num_rows, source_fingerprint)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            meta = _write_store(tmp, batches, num_rows, settings, compute_batch_size, progress)
            meta["source_fingerprint"] = source_fingerprint
            _write_json(tmp / META_FILE, meta)
            return _publish(tmp, directory, settings, num_rows, source_fingerprint)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

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
        rows = np.asarray(self.array[unique], dtype=np.float32)
        return rows[inverse]

    def read_tensor(self, indices: np.ndarray | Iterable[int]) -> torch.Tensor:
        """Like :meth:`read`, as a float32 torch tensor."""
        return torch.from_numpy(self.read(indices))

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "meta": self.meta}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.directory = state["directory"]
        self.meta = state["meta"]
        self.settings = FeatureSettings.model_validate(self.meta["settings"])
        self._array = None

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.directory)!r}, shape={self.shape})"


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())


def _write_store(
    tmp: Path,
    batches: Iterable[np.ndarray],
    num_rows: int,
    settings: FeatureSettings,
    compute_batch_size: int,
    progress: ProgressFn | None,
) -> dict[str, Any]:
    """Compute features batch by batch into ``tmp/features.npy``; return the metadata."""
    if num_rows <= 0:
        raise ValueError(f"num_rows must be positive, got {num_rows}")
    compute = feature_function(settings)
    out: np.ndarray | None = None
    num_samples = -1
    done = 0
    for batch in batches:
        batch = _check_batch(batch, num_samples)
        if out is None:
            num_samples = batch.shape[1]
            shape = (num_rows, settings.n_mels, settings.num_frames(num_samples))
            out = np.lib.format.open_memmap(
                tmp / FEATURES_FILE, mode="w+", dtype=settings.dtype, shape=shape
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


def _publish(
    tmp: Path,
    directory: Path,
    settings: FeatureSettings,
    num_rows: int,
    source_fingerprint: str | None,
) -> FeatureStore:
    """Atomically rename ``tmp`` to ``directory``; if someone else won, use theirs."""
    try:
        os.rename(tmp, directory)
    except OSError:
        if not directory.exists():
            raise
        # Lost the race: a complete store is already in place (renames are atomic).
    return _open_checked(directory, settings, num_rows, source_fingerprint)


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


# --------------------------------------------------------------------------- datasets


def iter_dataset_audio(
    dataset: Any, batch_size: int = 512, column: str = "audio"
) -> Iterator[np.ndarray]:
    """Yield [b, T] arrays of a ``datasets.Dataset`` column of equal-length int sequences.

    Goes through Arrow to keep the stored dtype (the numpy formatter widens int16 to
    int64) and to avoid per-row Python objects.
    """
    arrow_view = dataset.with_format("arrow", columns=[column])
    for start in range(0, len(dataset), batch_size):
        table = arrow_view[start : start + batch_size]
        yield _list_column_to_2d(table.column(column).combine_chunks(), column)


def _list_column_to_2d(col: pa.Array, name: str) -> np.ndarray:
    if not (
        pa.types.is_list(col.type)
        or pa.types.is_large_list(col.type)
        or pa.types.is_fixed_size_list(col.type)
    ):
        raise TypeError(f"column {name!r} must hold int16 sequences, got Arrow type {col.type}")
    if len(col) == 0:
        return np.zeros((0, 0), dtype=np.int16)
    lengths = col.value_lengths().to_numpy(zero_copy_only=False)
    if (lengths != lengths[0]).any():
        raise ValueError(f"column {name!r} has clips of different lengths; pad or crop first")
    return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), int(lengths[0]))


def ensure_feature_store(
    dataset: Any,
    settings: FeatureSettings,
    directory: Path | str,
    progress: ProgressFn | None = None,
    *,
    batch_size: int = 512,
    column: str = "audio",
) -> FeatureStore:
    """Return the cached store in ``directory`` for ``dataset``, building it if missing.

    ``dataset`` is a ``datasets.Dataset`` whose ``column`` holds equal-length int16
    sequences; its fingerprint is recorded and checked on later cache hits.
    """
    return FeatureStore.build(
        iter_dataset_audio(dataset, batch_size=batch_size, column=column),
        num_rows=len(dataset),
        settings=settings,
        directory=directory,
        source_fingerprint=getattr(dataset, "_fingerprint", None),
        compute_batch_size=batch_size,
        progress=progress,
    )
