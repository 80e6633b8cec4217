"""Features: settings and the log-mel computation (the store: test_feature_store.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pydantic
import pytest
import scipy.signal
import torch

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
    """The HTK filterbank written out in NumPy (float64, [n_freqs, n_mels]): the one cached
    log-mel features are keyed on, so ``mel_filterbank`` must equal it bit for bit."""
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
