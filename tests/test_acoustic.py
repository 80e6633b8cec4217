"""The acoustic channel DSP: measured SNR, band edges, lengths and levels match the condition."""

import dataclasses

import numpy as np
import pytest
from scipy import signal

from partitioners.feature_shift import AcousticPartitioner, Condition, client_condition
from partitioners.params import AcousticParams
from simfl.data.acoustic import apply_condition, shape

RATE = 16_000
ALL_EFFECTS = ("noise", "band", "gain", "speed", "reverb")


def _speechlike(rows=4, seed=0):
    """int16 clips: white noise (flat spectrum, for filter measurements) at varied levels."""
    rng = np.random.default_rng(seed)
    wave = rng.standard_normal((rows, RATE)) * rng.uniform(500, 5000, size=(rows, 1))
    return np.clip(np.round(wave), -32768, 32767).astype(np.int16)


def _conditions(severity, clients=8, effects=("noise", "band", "gain", "speed")):
    params = AcousticParams(severity=severity, effects=effects)
    return AcousticPartitioner(clients, params, seed=11).client_conditions()


@pytest.mark.parametrize("severity", [0.2, 0.6, 1.0])
def test_measured_snr_matches_each_clients_condition(severity):
    audio = _speechlike()
    for client, cond in enumerate(_conditions(severity)):
        rng_a, rng_b = np.random.default_rng(client), np.random.default_rng(client)
        out = apply_condition(audio, cond, RATE, rng_a).astype(np.float64)
        clean = shape(audio / 32768.0, cond, RATE, rng_b)  # the same channel, without noise
        noise = out - clean
        measured = 10 * np.log10((clean**2).sum(axis=1) / (noise**2).sum(axis=1))
        np.testing.assert_allclose(measured, cond.snr_db, atol=0.1)


def _cutoff(before: np.ndarray, after: np.ndarray, low: bool) -> float:
    """The -3 dB frequency of the measured response |H| = sqrt(P_after / P_before)."""
    f, p_in = signal.welch(before, RATE, nperseg=2048, axis=1)
    _, p_out = signal.welch(after, RATE, nperseg=2048, axis=1)
    gain_db = 10 * np.log10(p_out.mean(axis=0) / p_in.mean(axis=0))
    passband = gain_db[(f > 1000) & (f < 1400)].mean()
    below = gain_db < passband - 3.0
    if low:  # the low-pass edge: first frequency above the passband that is 3 dB down
        return float(f[np.flatnonzero(below & (f > 1400))[0]])
    return float(f[np.flatnonzero(~below & (f > 0))[0]])


@pytest.mark.parametrize("severity", [0.3, 1.0])
def test_measured_cutoffs_match_each_clients_condition(severity):
    audio = _speechlike(rows=16)
    bin_hz = RATE / 2048
    for client, cond in enumerate(_conditions(severity, effects=("band",))):
        out = apply_condition(audio, cond, RATE, np.random.default_rng(client))
        low_edge = _cutoff(audio / 32768.0, out, low=True)
        high_edge = _cutoff(audio / 32768.0, out, low=False)
        assert abs(low_edge - cond.lowpass_hz) <= max(0.03 * cond.lowpass_hz, 2 * bin_hz)
        assert abs(high_edge - cond.highpass_hz) <= max(0.1 * cond.highpass_hz, 2 * bin_hz)


def test_severity_zero_is_bit_identical_to_no_shift():
    audio = _speechlike()
    for cond in _conditions(0.0, effects=ALL_EFFECTS):
        assert cond == Condition() and cond.is_neutral
        out = apply_condition(audio, cond, RATE, np.random.default_rng(0))
        assert out is audio


def test_speed_and_reverb_keep_length_and_level():
    audio = _speechlike()
    cond = dataclasses.replace(Condition(), speed=1.12, rt60_s=0.4)
    out = apply_condition(audio, cond, RATE, np.random.default_rng(0))
    assert out.shape == audio.shape and out.dtype == np.float32
    rms_in = np.sqrt(np.mean((audio / 32768.0) ** 2, axis=1))
    np.testing.assert_allclose(np.sqrt(np.mean(out.astype(float) ** 2, axis=1)), rms_in, rtol=0.2)


def test_every_effect_gives_the_audio_it_gave_before_the_dsp_moved():
    """Values computed with the DSP in partitioners/feature_shift.py, same input and seeds."""
    cond = client_condition(AcousticParams(severity=0.8, effects=ALL_EFFECTS), 7, 5)
    out = apply_condition(_speechlike(rows=2), cond, RATE, np.random.default_rng(5))
    assert out.dtype == np.float32 and out.shape == (2, RATE)
    np.testing.assert_allclose(
        out[0, 1000:1004],
        [0.01194267813116312, -0.03005376085639, -0.027380967512726784, 0.012600740417838097],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        out[1, -3:],
        [-6.90331871737726e-05, -0.0004911668365821242, -0.0028367098420858383],
        rtol=1e-6,
    )
    np.testing.assert_allclose(np.abs(out).sum(axis=1), [376.0537109375, 74.43212890625], rtol=1e-6)
