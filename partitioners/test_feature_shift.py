"""Each client's recording condition (the DSP that applies it is tested in tests/test_acoustic)."""

import numpy as np
import pandas as pd

from partitioners.feature_shift import (
    AcousticPartitioner,
    Condition,
    client_condition,
    conditions_table,
)
from partitioners.label_shift import ShardsPartitioner
from partitioners.params import AcousticParams, ShardsParams

ALL_EFFECTS = ("noise", "band", "gain", "speed", "reverb")


def _conditions(severity, clients=8, effects=("noise", "band", "gain", "speed")):
    params = AcousticParams(severity=severity, effects=effects)
    return AcousticPartitioner(clients, params, seed=11).client_conditions()


def test_severity_zero_gives_every_client_the_neutral_condition():
    conditions = _conditions(0.0, effects=ALL_EFFECTS)
    assert conditions == [Condition()] * 8
    assert all(c.is_neutral for c in conditions)


def test_severity_spreads_conditions_and_is_deterministic():
    mild, strong = _conditions(0.1, clients=50), _conditions(1.0, clients=50)
    assert np.std([c.snr_db for c in strong]) > 5 * np.std([c.snr_db for c in mild])
    assert min(c.snr_db for c in mild) >= 35.0
    assert all(0.85 <= c.speed <= 1.15 and abs(c.gain_db) <= 12 for c in strong)
    params = AcousticParams(severity=0.5, effects=("noise", "reverb"))
    assert client_condition(params, 3, 7) == client_condition(params, 3, 7)
    assert client_condition(params, 3, 7) != client_condition(params, 3, 8)


def test_effects_left_out_stay_off():
    (only_noise,) = _conditions(1.0, clients=1, effects=("noise",))
    assert only_noise.snr_db is not None
    assert (only_noise.highpass_hz, only_noise.lowpass_hz, only_noise.rt60_s) == (None,) * 3
    assert (only_noise.gain_db, only_noise.speed) == (0.0, 1.0)


def test_conditions_table_has_one_float_row_per_client():
    table = conditions_table([Condition(), Condition(snr_db=10.0, speed=1.1)])
    assert list(table.columns) == [
        "snr_db",
        "highpass_hz",
        "lowpass_hz",
        "gain_db",
        "speed",
        "rt60_s",
    ]
    pd.testing.assert_series_equal(
        table.iloc[1],
        pd.Series([10.0, np.nan, np.nan, 0.0, 1.1, np.nan], index=table.columns),
        check_names=False,
    )


def test_the_sample_split_is_the_base_partitioners():
    labels = np.random.default_rng(0).integers(0, 6, size=300)
    shards = ShardsPartitioner(5, ShardsParams(), seed=2)
    acoustic = AcousticPartitioner(5, AcousticParams(), seed=2, base=shards)
    expected = ShardsPartitioner(5, ShardsParams(), seed=2).split(labels)
    assert all(np.array_equal(a, b) for a, b in zip(acoustic.split(labels), expected, strict=True))
