"""Local DP: Opacus DP-SGD in a client's training, and per-client accounting."""

from __future__ import annotations

import pytest
import torch
from opacus.accountants import RDPAccountant

from simfl.config import scenario_from_dict
from simfl.engine.records import RoundRecord
from simfl.engine.server_callbacks import RoundState
from simfl.privacy.accounting import DPSGD_SAMPLE_RATE, DPSGD_STEPS, DpsgdAccountant
from simfl.privacy.central import PARTITION_METRIC, PrivateAggregation, RoundReplies
from simfl.privacy.dpsgd import dpsgd_plan, fix_batch_norm, train_epochs_dpsgd
from simfl.registry import MODELS


def scenario(privacy: dict, model: dict | None = None):
    return scenario_from_dict(
        {
            "scenario": {"name": "ldp", "rounds": 2},
            "data": {"dataset": "synth-commands", "num_clients": 4},
            "partition": {"kind": "iid"},
            "model": {"name": "kws-cnn"} | (model or {}),
            "train": {"batch_size": 8, "local_epochs": 2, "lr": 0.05},
            "strategy": {"name": "fedavg", "min_available_nodes": 4},
            "privacy": privacy,
        }
    )


def model_and_data(sc, n=40, seed=0):
    torch.manual_seed(seed)
    model = MODELS["kws-cnn"].load()(sc.model, 12)
    features = torch.randn(n, 1, 40, 101)
    labels = torch.randint(0, 12, (n,))
    return model, features, labels


def test_dpsgd_trains_clips_and_leaves_ordinary_weight_names():
    sc = scenario({"mode": "local-dpsgd", "noise_multiplier": 0.8, "clipping_norm": 1.0})
    model, features, labels = model_and_data(sc)
    names = list(model.state_dict())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = train_epochs_dpsgd(model, features, labels, sc.train, 7, sc.privacy)
    assert list(model.state_dict()) == names and not any("_module" in k for k in names)
    assert not model._forward_hooks and not any(m._forward_hooks for m in model.modules())
    assert all(getattr(p, "grad_sample", None) is None for p in model.parameters())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    rate, steps = dpsgd_plan(40, 8, 2)
    assert (rate, steps) == (0.2, 10)
    assert stats.extra == {DPSGD_SAMPLE_RATE: 0.2, DPSGD_STEPS: 10}
    # Same seed, same result (Poisson batches and noise are seeded).
    again, *_ = model_and_data(sc)
    train_epochs_dpsgd(again, features, labels, sc.train, 7, sc.privacy)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def test_batch_norm_is_converted_when_asked():
    sc = scenario({"mode": "local-dpsgd", "fix_batch_norm": True}, {"batch_norm": True})
    model, features, labels = model_and_data(sc)
    fixed = fix_batch_norm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fixed.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in fixed.modules())
    train_epochs_dpsgd(fixed, features, labels, sc.train, 1, sc.privacy)


def test_client_epsilon_equals_opacus_accountant_for_its_history():
    z, delta = 1.1, 1e-5
    sc = scenario({"mode": "local-dpsgd", "noise_multiplier": z, "delta": delta})
    aggregation = PrivateAggregation.__new__(PrivateAggregation)
    aggregation.replies = {
        1: RoundReplies(2, [{PARTITION_METRIC: 0, DPSGD_SAMPLE_RATE: 0.2, DPSGD_STEPS: 10},
                            {PARTITION_METRIC: 3, DPSGD_SAMPLE_RATE: 0.05, DPSGD_STEPS: 40}]),
        2: RoundReplies(2, [{PARTITION_METRIC: 0, DPSGD_SAMPLE_RATE: 0.2, DPSGD_STEPS: 10}]),
    }  # fmt: skip
    accountant = DpsgdAccountant(aggregation, sc)
    for t in (1, 2):
        metrics = accountant.after_round(RoundState(t, None, None, RoundRecord(t))).metrics

    def opacus_epsilon(rate, steps):
        independent = RDPAccountant()
        for _ in range(steps):
            independent.step(noise_multiplier=z, sample_rate=rate)
        return independent.get_epsilon(delta)

    client0, client3 = opacus_epsilon(0.2, 20), opacus_epsilon(0.05, 40)
    assert metrics["epsilon_client_max"] == pytest.approx(max(client0, client3), rel=1e-9)
    assert metrics["epsilon_client_mean"] == pytest.approx((client0 + client3) / 2, rel=1e-9)
    assert metrics["dp_clients_trained"] == 2
