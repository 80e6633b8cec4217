"""The update-clipping feature (train.max_update_norm): a client mod registered as a feature,
exercised on exact arrays and in a real Flower/Ray simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord
from test_server_callbacks import GlobalUpdateNorm
from tiny_scenario import tiny_scenario

from simfl.engine.extensions import features_for
from simfl.run import RunOptions, run_scenario
from simfl.strategies.update_clipping import UpdateClippingFeature, clipped, update_norm


def record(**arrays: np.ndarray) -> ArrayRecord:
    return ArrayRecord({name: Array(value) for name, value in arrays.items()})


def test_an_update_over_the_norm_is_scaled_to_it_and_counters_are_left_alone():
    received = record(w=np.zeros(2, np.float32), steps=np.array([5], np.int64))
    trained = record(w=np.array([3.0, 4.0], np.float32), steps=np.array([9], np.int64))
    assert update_norm(received, trained) == 5.0  # the counter does not count
    out = clipped(received, trained, 1.0)
    assert out["w"].numpy().tolist() == [pytest.approx(0.6), pytest.approx(0.8)]
    assert out["w"].numpy().dtype == np.float32
    assert out["steps"].numpy().tolist() == [9]


def test_an_update_within_the_norm_travels_unchanged():
    received = record(w=np.ones(2, np.float32))
    trained = record(w=np.array([1.5, 1.0], np.float32))
    assert clipped(received, trained, 0.5) is None  # exactly at the norm
    assert clipped(received, trained, 2.0) is None


def test_the_feature_applies_only_with_a_norm(tmp_path):
    plain = tiny_scenario(tmp_path, tmp_path)
    bounded = tiny_scenario(tmp_path, tmp_path, train={"max_update_norm": 0.05})
    assert not any(isinstance(f, UpdateClippingFeature) for f in features_for(plain))
    assert any(isinstance(f, UpdateClippingFeature) for f in features_for(bounded))
    assert plain.full_hash() == tiny_scenario(tmp_path, tmp_path, train={}).full_hash()


@pytest.mark.ray
def test_clipped_clients_bound_the_global_step(tmp_path, tiny_cache, ray_runtime):
    """FedAvg's step is a weighted mean of the updates: with every update within 0.05 it is too,
    while the same run without clipping steps further than that."""
    norms = {}
    for name, train in (("plain", {}), ("clipped", {"max_update_norm": 0.05})):
        probe = GlobalUpdateNorm()
        scenario = tiny_scenario(tmp_path / name, tiny_cache, train=train)
        options = RunOptions(wandb_mode="disabled", session=ray_runtime, server_callbacks=[probe])
        run_scenario(scenario, options)
        norms[name] = probe.norms
    assert len(norms["plain"]) == len(norms["clipped"]) == 2
    assert all(norm > 0.05 for norm in norms["plain"])
    assert all(norm <= 0.05 * (1 + 1e-6) for norm in norms["clipped"])
    assert not math.isclose(norms["plain"][0], norms["clipped"][0])
