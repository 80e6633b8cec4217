"""Only trainable, non-local parameters travel: a frozen Whisper encoder never leaves a process."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from flower_helpers import RUN_ID, flower_task, in_memory_grid
from flwr.app import ConfigRecord, Context, RecordDict

from simfl import registry
from simfl.config import scenario_from_dict
from simfl.data.client_index import ClientIndex
from simfl.data.feature_store import FeatureStore
from simfl.data.settings import FeatureSettings
from simfl.engine import client_app, worker
from simfl.engine.model_summary import model_summary
from simfl.engine.plan import RunPlan
from simfl.engine.records import message_bytes
from simfl.engine.server_app import initial_shared_arrays
from simfl.flower_compat.grid import addressed

ROWS, CLASSES, FRAMES = 24, 3, 20


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("travel")
    rng = np.random.default_rng(0)
    labels = np.arange(ROWS) % CLASSES
    t = np.arange(FRAMES * 160) / 16000
    audio = np.stack([np.sin(2 * np.pi * (300 + 500 * y) * t) for y in labels])
    audio = audio + 0.2 * rng.normal(size=audio.shape)
    settings = FeatureSettings(kind="whisper", frames=FRAMES)
    store = FeatureStore.build([(audio * 8000).astype(np.int16)], num_rows=ROWS,
                               settings=settings, directory=root / "store")  # fmt: skip
    ClientIndex.build(root / "index", [np.arange(12), np.arange(12, ROWS)], np.arange(ROWS),
                      labels, 0.25, seed=0)  # fmt: skip
    return store.directory, root / "index"


def make_plan(data, tmp_path: Path, **model) -> RunPlan:
    model = {"name": "whisper-kws", "config_preset": "test-small", "input_frames": FRAMES} | model
    scenario = scenario_from_dict(
        {
            "scenario": {"name": "travel", "rounds": 1, "seed": 1},
            "data": {"dataset": "synth-commands", "num_clients": 2,
                     "features": {"kind": "whisper", "frames": FRAMES}},
            "partition": {"kind": "iid"},
            "model": model,
            "train": {"batch_size": 4, "lr": 0.05},
            "strategy": {"name": "fedavg", "min_train_nodes": 1, "min_available_nodes": 1},
        }
    )  # fmt: skip
    store, index = data
    return RunPlan(scenario, store, store, index, CLASSES, tmp_path / "state")


def test_frozen_encoder_stays_home_and_reloads(data, tmp_path):
    plan = make_plan(data, tmp_path)
    start = initial_shared_arrays(plan)
    assert set(start) == {"head.conv.weight", "head.conv.bias",
                          "head.linear.weight", "head.linear.bias"}  # fmt: skip
    strategy = registry.STRATEGIES["fedavg"].load()(plan.scenario.strategy, plan.scenario)
    with flower_task():
        random.seed(0)
        config = ConfigRecord({})
        sent = list(strategy.configure_train(1, start, config, in_memory_grid(1)))
        sent = [addressed(sent[0], 1, 0)]  # as the virtual-client grid does
        context = Context(RUN_ID, 1, {"partition-id": 0}, RecordDict(), {})
        reply = client_app.handle_train(plan, sent[0], context)
        again = client_app.handle_train(plan, sent[0], context)  # reload into the cached model
    assert set(reply.content["arrays"]) == set(start)
    got = reply.content["arrays"].to_torch_state_dict()
    assert any(not torch.equal(got[k], v) for k, v in start.to_torch_state_dict().items())
    assert set(again.content["arrays"]) == set(start)
    cached = worker.WORKER_CACHE.get(plan).model.state_dict()
    initial = plan.initial_model().state_dict()
    encoder = [k for k in initial if k.startswith("encoder.")]
    assert encoder and all(torch.equal(cached[k], initial[k]) for k in encoder)
    assert message_bytes([reply]) == model_summary(plan)["update_bytes"]


def test_frozen_encoder_update_is_under_a_tenth_of_the_full_model(data, tmp_path):
    dims = {"config_preset": "whisper-tiny", "input_frames": FRAMES}
    frozen = model_summary(make_plan(data, tmp_path, **dims))
    full = model_summary(make_plan(data, tmp_path, train_all=True, **dims))
    assert frozen["full_model_bytes"] == full["full_model_bytes"]
    ratio = frozen["update_bytes"] / full["update_bytes"]
    print(f"frozen {frozen['update_bytes']} B vs full {full['update_bytes']} B: {ratio:.4f}")
    assert ratio < 0.10 and frozen["update_fraction"] == pytest.approx(
        frozen["update_bytes"] / frozen["full_model_bytes"]
    )
    assert frozen["init"] == "random (preset whisper-tiny)"
