"""Systems heterogeneity, the clients' side: Byzantine attacks, injected faults, and the trace
files devices and availability are read from (the plain-data unpickler)."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from test_systems import plan_for

from simfl.schema.systems import SystemsConfig
from simfl.systems.attacks import ClientAttack, client_attack, malicious_clients
from simfl.systems.availability import PeriodicIntervals
from simfl.systems.traces import (
    TraceError,
    load_plain_pickle,
    read_availability_trace,
    read_device_trace,
)

# --------------------------------------------------------------------------- attacks


def test_attacks_corrupt_the_update_as_specified():
    received = {"w": torch.tensor([1.0, 1.0]), "steps": torch.tensor(3)}
    trained = {"w": torch.tensor([1.5, 0.0]), "steps": torch.tensor(4)}
    config = SystemsConfig.model_validate(
        {"attack": {"kind": "sign-flip", "fraction": 0.2, "scale": 5.0}}
    ).attack
    flipped = ClientAttack(config, 0, 1, 1).update(trained, received)
    assert flipped["w"].tolist() == [1.0 - 2.5, 1.0 + 5.0] and int(flipped["steps"]) == 4
    scaled = ClientAttack(config.model_copy(update={"kind": "scale"}), 0, 1, 1)
    assert scaled.update(trained, received)["w"].tolist() == [3.5, -4.0]
    flip_labels = ClientAttack(config.model_copy(update={"kind": "label-flip"}), 0, 1, 1)
    assert flip_labels.labels(torch.tensor([0, 3, 11]), 12).tolist() == [11, 8, 0]
    noise = ClientAttack(config.model_copy(update={"kind": "gaussian", "noise_std": 2.0}), 0, 1, 1)
    first = noise.update(trained, received)["w"]
    assert torch.equal(first, noise.update(trained, received)["w"])  # seeded per client, round
    bad = malicious_clients(0, 20, 0.2)
    assert len(bad) == 4
    honest = next(c for c in range(20) if c not in bad)
    assert client_attack(config, 0, 20, honest, 1) is None
    assert client_attack(config, 0, 20, min(bad), 1) is not None


# --------------------------------------------------------------------------- traces


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_plain_pickles_load_and_anything_else_is_refused(tmp_path: Path):
    plain = tmp_path / "plain.pkl"
    data = {1: {"computation": 2.5, "communication": 800.0}, "2": [1, 2.0, None, (3,)]}
    plain.write_bytes(pickle.dumps(data))
    assert load_plain_pickle(plain) == data
    for name, value in (("evil", Evil()), ("ordered", OrderedDict(a=1)), ("array", np.zeros(2))):
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(pickle.dumps(value))
        with pytest.raises(TraceError, match="only plain data"):
            load_plain_pickle(path)


def test_fedscale_traces_import(tmp_path: Path):
    devices = tmp_path / "device.pkl"
    devices.write_bytes(
        pickle.dumps(
            {
                2: {"computation": 4.0, "communication": 300.0},
                1: {"computation": 1.0, "communication": 900.0},
            }
        )
    )
    trace = read_device_trace(devices)
    assert trace.ms_per_sample.tolist() == [3.0, 12.0] and trace.up_kbps.tolist() == [900, 300]
    behaviour = tmp_path / "behave.pkl"
    behaviour.write_bytes(
        pickle.dumps({1: {"active": [0, 50], "inactive": [10, 60], "finish_time": 100}})
    )
    availability = read_availability_trace(behaviour, 3600.0)
    model = PeriodicIntervals(availability.intervals, availability.periods)
    assert model.online_until(0, 155.0) == 160.0 and model.online_until(0, 30.0) == -np.inf


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("client,ms_per_sample,down_kbps\n0,1,2\n", "missing columns"),
        ("client,ms_per_sample,down_kbps,up_kbps,latency_ms\n0,x,1,1,0\n", "non-numeric"),
        ("client,ms_per_sample,down_kbps,up_kbps,latency_ms\n0,-1,1,1,0\n", ">= 0"),
    ],
)
def test_malformed_device_traces_are_refused(tmp_path: Path, text: str, message: str):
    path = tmp_path / "devices.csv"
    path.write_text(text)
    with pytest.raises(TraceError, match=message):
        read_device_trace(path)


def test_availability_trace_intervals_are_checked(tmp_path: Path):
    path = tmp_path / "availability.csv"
    path.write_text("client,start_s,end_s\n0,10,5\n")
    with pytest.raises(TraceError, match="start < end"):
        read_availability_trace(path, 100.0)


# --------------------------------------------------------------------------- faults


def test_crashes_before_and_after_training_are_seeded_per_client_and_round():
    from simfl.systems.faults import InjectedClientFault, maybe_fail

    config = SystemsConfig.model_validate(
        {"faults": {"crash_before_train": 0.5, "crash_after_train": 1.0}}
    ).faults
    with pytest.raises(InjectedClientFault, match="after train in client 3, round 2"):
        maybe_fail(config, 0, "after-train", 3, 2)

    def crashes(client: int, server_round: int) -> bool:
        try:
            maybe_fail(config, 0, "before-train", client, server_round)
        except InjectedClientFault:
            return True
        return False

    draws = [crashes(c, r) for c in range(20) for r in range(1, 11)]
    assert draws == [crashes(c, r) for c in range(20) for r in range(1, 11)]
    assert 70 < sum(draws) < 130  # about half of 200


def test_hanging_clients_end_the_round_at_the_deadline_and_slow_ones_take_longer():
    plan = plan_for([1, 1, 1], [100] * 3, deadline_s=30.0, faults={"hang": 1.0})
    outcome = plan.settle(1, [(0, 0, 0, 0.0), (1, 0, 0, 0.0), (2, 0, 0, 0.0)])
    assert outcome.kept == frozenset() and outcome.dropped_deadline == 3
    assert outcome.seconds == 30.0
    slow = plan_for(
        [1, 1, 1], [100] * 3, faults={"slowdown_probability": 1.0, "slowdown_factor": 4.0}
    )
    assert slow.settle(1, [(0, 0, 0, 0.0)]).seconds == pytest.approx(0.4)
