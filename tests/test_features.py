"""Features: settings, the log-mel computation, and the feature store built from datasets."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import datasets
import numpy as np
import pydantic
import pytest
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simfl.data import feature_store as F
from simfl.data.dataset_audio import iter_dataset_audio
from simfl.data.feature_store import FeatureStore, FeatureStoreError
from simfl.data.logmel import log_mel, mel_filterbank
from simfl.data.settings import FeatureSettings, empty_mel_filters

SR = 16000
FP16_ATOL = 0.02  # |log-mel| < ~16, float16 keeps ~3 decimal digits


def tone(freq: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (amp * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def noise_clips(n: int, seed: int = 0, length: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-8000, 8000, size=(n, length), dtype=np.int16)


def batches(audio: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(audio), size):
        yield audio[start : start + size]


# ----------------------------------------------------------------------------- settings


def test_settings_defaults_and_frames() -> None:
    s = FeatureSettings()
    assert (s.n_mels, s.n_fft, s.win_length, s.hop_length) == (40, 480, 480, 160)
    assert s.num_frames(SR) == 101
    assert s.dtype == "float16"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"f_max": 8001.0},
        {"win_length": 512},
        {"n_mels": 0},
        {"hop_length": -1},
        {"f_min": 7600.0},
        {"dtype": "float64"},
        {"n_mels": 200},  # empty filters at 33 Hz resolution
        {"unknown": 1},
    ],
)
def test_settings_validation(kwargs: dict) -> None:
    with pytest.raises(pydantic.ValidationError):
        FeatureSettings(**kwargs)


def test_settings_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        FeatureSettings().n_mels = 64  # type: ignore[misc]


def test_cache_key_stable_and_sensitive() -> None:
    a, b = FeatureSettings(), FeatureSettings()
    assert a.cache_key() == b.cache_key()
    assert len(a.cache_key()) == 16
    assert FeatureSettings(n_mels=64).cache_key() != a.cache_key()
    assert FeatureSettings(dtype="float32").cache_key() != a.cache_key()
    roundtrip = FeatureSettings.model_validate_json(a.model_dump_json())
    assert roundtrip.cache_key() == a.cache_key()


# ----------------------------------------------------------------------------- mel filterbank


def librosa_style_htk_mel(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa.filters.mel(htk=True, norm=None) written out; returns [n_freqs, n_mels]."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    fftfreqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(np.array(fmin)), hz_to_mel(np.array(fmax)), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    return weights.T


@pytest.mark.parametrize(
    "kwargs", [{}, {"n_mels": 64, "n_fft": 512, "win_length": 400, "f_min": 0.0, "f_max": 8000.0}]
)
def test_mel_filterbank_matches_reference(kwargs: dict) -> None:
    s = FeatureSettings(**kwargs)
    fb = mel_filterbank(s)
    assert fb.shape == (s.n_fft // 2 + 1, s.n_mels)
    assert fb.dtype == torch.float32
    ref = librosa_style_htk_mel(s.sample_rate, s.n_fft, s.n_mels, s.f_min, s.f_max)
    np.testing.assert_allclose(fb.numpy(), ref, atol=1e-6)
    assert (fb.max(dim=0).values > 0).all()
    assert fb.max() <= 1.0


def filterbank_before_transformers(s: FeatureSettings) -> np.ndarray:
    """simfl's own HTK filterbank before it used transformers' (float64, [n_freqs, n_mels])."""
    hz_to_mel = lambda hz: 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)  # noqa: E731
    all_freqs = np.linspace(0.0, s.sample_rate // 2, s.n_freqs)
    f_pts = 700.0 * (
        10.0 ** (np.linspace(hz_to_mel(s.f_min), hz_to_mel(s.f_max), s.n_mels + 2) / 2595.0) - 1.0
    )
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - all_freqs[:, None]
    return np.maximum(0.0, np.minimum(-slopes[:, :-2] / f_diff[:-1], slopes[:, 2:] / f_diff[1:]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"n_mels": 64, "n_fft": 512, "win_length": 400, "f_min": 0.0, "f_max": 8000.0},
        {"n_mels": 80, "n_fft": 400, "win_length": 400, "f_min": 0.0, "f_max": 8000.0},
        {"n_mels": 23, "n_fft": 1024, "win_length": 640, "f_min": 125.0, "f_max": 3800.0},
        {"n_mels": 40, "n_fft": 256, "win_length": 200, "f_min": 60.0, "f_max": 4000.0,
         "sample_rate": 8000},
    ],
)  # fmt: skip
def test_mel_filterbank_is_bit_identical_to_the_one_features_were_cached_with(
    kwargs: dict,
) -> None:
    s = FeatureSettings(**kwargs)
    previous = torch.from_numpy(filterbank_before_transformers(s)).to(torch.float32)
    assert torch.equal(mel_filterbank(s), previous)


@pytest.mark.parametrize("n_fft", [64, 128, 256, 480, 512])
@pytest.mark.parametrize("f_min", [0.0, 20.0, 300.0])
def test_empty_filter_check_agrees_with_the_filterbank(n_fft: int, f_min: float) -> None:
    """The settings schema finds empty filters without numpy; it must find exactly those."""
    for n_mels in range(1, 129, 3):
        s = FeatureSettings.model_construct(
            n_mels=n_mels, n_fft=n_fft, win_length=n_fft, hop_length=160, f_min=f_min,
            f_max=7600.0, sample_rate=16000,
        )  # fmt: skip
        expected = np.flatnonzero(filterbank_before_transformers(s).max(axis=0) == 0.0)
        assert empty_mel_filters(s) == expected.tolist(), (n_fft, f_min, n_mels)


# ----------------------------------------------------------------------------- log-mel


def reference_log_mel(audio: np.ndarray, s: FeatureSettings) -> np.ndarray:
    """Framing + rfft by hand (scipy's periodic Hann), for one int16 clip."""
    x = audio.astype(np.float64) / 32768.0
    pad = s.n_fft // 2
    x = np.pad(x, pad, mode="reflect")
    n_frames = 1 + (len(x) - s.n_fft) // s.hop_length
    window = np.zeros(s.n_fft)
    offset = (s.n_fft - s.win_length) // 2
    window[offset : offset + s.win_length] = scipy.signal.get_window("hann", s.win_length)
    frames = np.stack([x[i * s.hop_length : i * s.hop_length + s.n_fft] for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # [frames, n_freqs]
    fb = librosa_style_htk_mel(s.sample_rate, s.n_fft, s.n_mels, s.f_min, s.f_max)
    return np.log(power @ fb + 1e-6).T


def test_log_mel_shape_dtype_and_reference() -> None:
    s = FeatureSettings()
    audio = noise_clips(3)
    out = log_mel(torch.from_numpy(audio), s)
    assert out.shape == (3, 40, 101)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out[1].numpy(), reference_log_mel(audio[1], s), atol=2e-3)


def test_log_mel_deterministic_batched_and_int16_scaling() -> None:
    s = FeatureSettings()
    audio = noise_clips(4, seed=1)
    a = log_mel(torch.from_numpy(audio), s)
    b = log_mel(torch.from_numpy(audio), s)
    assert torch.equal(a, b)
    single = torch.cat([log_mel(torch.from_numpy(audio[i : i + 1]), s) for i in range(4)])
    torch.testing.assert_close(a, single, atol=1e-4, rtol=0)
    as_float = log_mel(torch.from_numpy(audio.astype(np.float32) / 32768.0), s)
    torch.testing.assert_close(a, as_float, atol=1e-4, rtol=0)


def test_log_mel_rejects_bad_input() -> None:
    s = FeatureSettings()
    with pytest.raises(ValueError):
        log_mel(torch.zeros(SR), s)
    with pytest.raises(TypeError):
        log_mel(torch.zeros(1, SR, dtype=torch.int32), s)


def test_silence_is_log_eps() -> None:
    out = log_mel(torch.zeros(1, SR, dtype=torch.int16), FeatureSettings())
    torch.testing.assert_close(out, torch.full_like(out, float(np.log(1e-6))))


@pytest.mark.parametrize("freq", [250.0, 1000.0, 3000.0, 6000.0])
def test_pure_tone_lands_in_its_mel_band(freq: float) -> None:
    s = FeatureSettings()
    out = log_mel(torch.from_numpy(tone(freq)[None]), s)[0]  # [n_mels, frames]
    band = int(out[:, 5:-5].mean(dim=1).argmax())
    # Centre frequencies of the HTK mel bands, computed independently of the module.
    mels = np.linspace(2595 * np.log10(1 + s.f_min / 700), 2595 * np.log10(1 + s.f_max / 700), 42)
    centres = (700 * (10 ** (mels / 2595) - 1))[1:-1]
    expected = int(np.abs(centres - freq).argmin())
    assert abs(band - expected) <= 1
    # Energy is concentrated: the peak band is far above the median band.
    profile = out.mean(dim=1)
    assert profile[band] - profile.median() > 5.0


# ----------------------------------------------------------------------------- feature store


def build_store(tmp_path: Path, audio: np.ndarray, name: str = "store", **kw) -> FeatureStore:
    s = kw.pop("settings", FeatureSettings())
    return FeatureStore.build(
        batches(audio, kw.pop("batch", 7)),
        num_rows=len(audio),
        settings=s,
        directory=tmp_path / name,
        **kw,
    )


def test_store_layout_and_read_matches_recompute(tmp_path: Path) -> None:
    audio = noise_clips(20, seed=2)
    calls: list[tuple[int, int]] = []
    store = build_store(tmp_path, audio, progress=lambda d, t: calls.append((d, t)))
    assert len(store) == 20
    assert store.shape == (20, 40, 101)
    assert calls[-1] == (20, 20) and len(calls) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no temp dir left
    raw = np.load(tmp_path / "store" / "features.npy", mmap_mode="r")
    assert raw.dtype == np.float16 and raw.shape == (20, 40, 101)
    meta = json.loads((tmp_path / "store" / "meta.json").read_text())
    assert meta["num_rows"] == 20 and meta["shape"] == [20, 40, 101]
    assert meta["settings"] == FeatureSettings().model_dump(mode="json")

    idx = np.array([17, 3, 3, 9])
    rows = FeatureStore.open(tmp_path / "store").read(idx)
    assert rows.dtype == np.float32 and rows.shape == (4, 40, 101)
    expected = log_mel(torch.from_numpy(audio[idx]), FeatureSettings()).numpy()
    np.testing.assert_allclose(rows, expected, atol=FP16_ATOL, rtol=0)


def test_float32_store_is_exact(tmp_path: Path) -> None:
    audio = noise_clips(5, seed=3)
    store = build_store(tmp_path, audio, settings=FeatureSettings(dtype="float32"))
    expected = log_mel(torch.from_numpy(audio), FeatureSettings()).numpy()
    np.testing.assert_allclose(store.read(np.arange(5)), expected, atol=1e-5)


def test_store_read_bounds(tmp_path: Path) -> None:
    store = build_store(tmp_path, noise_clips(4))
    np.testing.assert_array_equal(store.read([-1]), store.read([3]))
    assert store.read(np.array([], dtype=np.int64)).shape == (0, 40, 101)
    with pytest.raises(IndexError):
        store.read([4])


def test_cache_hit_does_not_rebuild(tmp_path: Path) -> None:
    audio = noise_clips(6)
    first = build_store(tmp_path, audio)
    features_file = tmp_path / "store" / "features.npy"
    mtime = features_file.stat().st_mtime_ns

    def must_not_be_read() -> Iterator[np.ndarray]:
        raise AssertionError("cache hit must not consume the audio")
        yield  # pragma: no cover

    again = FeatureStore.build(
        must_not_be_read(), num_rows=6, settings=FeatureSettings(), directory=tmp_path / "store"
    )
    assert features_file.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.read(np.arange(6)), first.read(np.arange(6)))


def test_cache_mismatch_is_refused(tmp_path: Path) -> None:
    build_store(tmp_path, noise_clips(6), source_fingerprint="abc")
    with pytest.raises(FeatureStoreError, match="settings"):
        build_store(tmp_path, noise_clips(6), settings=FeatureSettings(n_mels=32))
    with pytest.raises(FeatureStoreError, match="rows"):
        build_store(tmp_path, noise_clips(5))
    with pytest.raises(FeatureStoreError, match="source"):
        build_store(tmp_path, noise_clips(6), source_fingerprint="xyz")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("x")
    with pytest.raises(FeatureStoreError):
        build_store(tmp_path, noise_clips(6), name="junk")


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected num_rows"):
        FeatureStore.build(
            batches(noise_clips(5), 2),
            num_rows=6,
            settings=FeatureSettings(),
            directory=tmp_path / "s",
        )
    with pytest.raises(ValueError, match="more than num_rows"):
        FeatureStore.build(
            batches(noise_clips(5), 2),
            num_rows=3,
            settings=FeatureSettings(),
            directory=tmp_path / "s",
        )
    with pytest.raises(ValueError, match="same length"):
        FeatureStore.build(
            iter([noise_clips(2), noise_clips(2, length=8000)]),
            num_rows=4,
            settings=FeatureSettings(),
            directory=tmp_path / "s",
        )
    assert list(tmp_path.iterdir()) == []


def test_lost_rename_race_uses_winner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process publishes the same store while we compute: we must open theirs."""
    winner_audio, loser_audio = noise_clips(4, seed=10), noise_clips(4, seed=11)
    target = tmp_path / "store"
    real_write = F._write_store

    def write_then_get_overtaken(*args, **kwargs):  # type: ignore[no-untyped-def]
        meta = real_write(*args, **kwargs)
        monkeypatch.setattr(F, "_write_store", real_write)
        build_store(tmp_path, winner_audio)  # the other process wins the rename
        return meta

    monkeypatch.setattr(F, "_write_store", write_then_get_overtaken)
    store = build_store(tmp_path, loser_audio)
    expected = log_mel(torch.from_numpy(winner_audio), FeatureSettings()).numpy()
    np.testing.assert_allclose(store.read(np.arange(4)), expected, atol=FP16_ATOL, rtol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    assert target.is_dir()


def test_pickle_does_not_copy_features(tmp_path: Path) -> None:
    store = build_store(tmp_path, noise_clips(30))
    store.read([0])
    blob = pickle.dumps(store)
    assert len(blob) < 4096 < os.path.getsize(tmp_path / "store" / "features.npy")
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone.read([5, 2]), store.read([5, 2]))


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
def test_reading_rows_leaves_the_features_file_unmapped(tmp_path: Path) -> None:
    """An actor reads client after client: no page it read may stay in its resident memory."""
    store = build_store(tmp_path, noise_clips(30))
    rows = store.read(np.arange(30)[::-1])
    assert rows.shape == (30, 40, 101) and rows.dtype == np.float32
    assert str(store.directory / "features.npy") not in Path("/proc/self/maps").read_text()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=9), max_size=25))
def test_read_preserves_order(tmp_path_factory: pytest.TempPathFactory, idx: list[int]) -> None:
    store = _shared_store(tmp_path_factory)
    full = np.asarray(store.array, dtype=np.float32)
    got = store.read(np.array(idx, dtype=np.int64))
    np.testing.assert_array_equal(got, full[idx].reshape(len(idx), *full.shape[1:]))


def _shared_store(factory: pytest.TempPathFactory) -> FeatureStore:
    root = factory.getbasetemp() / "shared_read_store"
    return FeatureStore.build(
        batches(noise_clips(10, seed=5), 4), num_rows=10, settings=FeatureSettings(), directory=root
    )


# ----------------------------------------------------------------------------- datasets


def build_from_dataset(
    ds: datasets.Dataset, directory: Path, settings: FeatureSettings | None = None, **kw
) -> FeatureStore:
    """A store built from a ``datasets.Dataset`` the way simfl.data.prepare builds one."""
    batch_size = kw.pop("batch_size", 512)
    return FeatureStore.build(
        iter_dataset_audio(ds, batch_size=batch_size),
        num_rows=len(ds),
        settings=settings or FeatureSettings(),
        directory=directory,
        source_fingerprint=kw.pop("source_fingerprint", "source-a:train"),
        compute_batch_size=batch_size,
        **kw,
    )


def test_store_from_a_dataset_equals_the_store_from_its_arrays(tmp_path: Path) -> None:
    audio = noise_clips(12, seed=7)
    ds = datasets.Dataset.from_dict({"audio": audio, "label": np.arange(12)})
    seen: list[int] = []
    store = build_from_dataset(
        ds, tmp_path / "ds", batch_size=5, progress=lambda d, t: seen.append(d)
    )
    assert seen == [5, 10, 12]
    assert store.shape == (12, 40, 101)
    assert store.source_fingerprint == "source-a:train"
    reference = build_store(tmp_path, audio, name="arrays")
    np.testing.assert_array_equal(store.read(np.arange(12)), reference.read(np.arange(12)))

    mtime = (tmp_path / "ds" / "features.npy").stat().st_mtime_ns
    again = build_from_dataset(ds, tmp_path / "ds")
    assert (tmp_path / "ds" / "features.npy").stat().st_mtime_ns == mtime
    assert again.shape == store.shape

    other = datasets.Dataset.from_dict({"audio": noise_clips(12, seed=8)})
    with pytest.raises(FeatureStoreError, match="source"):
        build_from_dataset(other, tmp_path / "ds", source_fingerprint="source-b:train")


def test_dataset_audio_respects_the_index_mapping(tmp_path: Path) -> None:
    audio = noise_clips(8, seed=9)
    ds = datasets.Dataset.from_dict({"audio": audio}).select([6, 1, 4])
    batches_read = list(iter_dataset_audio(ds, batch_size=2))
    assert [b.dtype for b in batches_read] == [np.int16, np.int16]
    np.testing.assert_array_equal(np.concatenate(batches_read), audio[[6, 1, 4]])
    store = build_from_dataset(ds, tmp_path / "sel", FeatureSettings(dtype="float32"), batch_size=2)
    expected = log_mel(torch.from_numpy(audio[[6, 1, 4]]), FeatureSettings()).numpy()
    np.testing.assert_allclose(store.read(np.arange(3)), expected, atol=1e-5)


def test_ragged_dataset_is_rejected(tmp_path: Path) -> None:
    ds = datasets.Dataset.from_dict({"audio": [np.zeros(SR, np.int16), np.zeros(SR - 1, np.int16)]})
    with pytest.raises(ValueError, match="different lengths"):
        build_from_dataset(ds, tmp_path / "ragged")
    assert list(tmp_path.iterdir()) == []
