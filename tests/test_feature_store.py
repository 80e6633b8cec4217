"""The feature store: its layout, exact reads, the cache and its refusals, and stores built
from datasets."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_features import batches, noise_clips

from simfl.data import feature_store as F
from simfl.data.dataset_audio import iter_dataset_audio
from simfl.data.feature_store import FeatureStore, FeatureStoreError
from simfl.data.logmel import log_mel
from simfl.data.settings import FeatureSettings

SR = 16000
FP16_ATOL = 0.02  # |log-mel| < ~16, float16 keeps ~3 decimal digits


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
