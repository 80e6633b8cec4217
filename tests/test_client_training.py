"""Client handlers on real data, torch and Flower objects: FedProx's term, FedAvg = centralized,
FedBN and FedPer keep their local parts out of every message, client state survives restarts."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from flower_helpers import RUN_ID, flower_task, in_memory_grid
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict

from simfl import registry
from simfl.config import scenario_from_dict
from simfl.data.client_index import ClientIndex
from simfl.data.feature_store import FeatureStore
from simfl.data.settings import FeatureSettings
from simfl.engine import client_app, worker
from simfl.engine.client_state import ClientStateStore
from simfl.engine.plan import RunPlan
from simfl.engine.server_app import initial_shared_arrays
from simfl.flower_compat import grid as compat_grid
from simfl.personalization import batch_norm_names
from simfl.seeding import derive_seed
from simfl.training import train_epochs

NUM_CLASSES, ROWS = 4, 48


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """48 tone-plus-noise clips (the tone's pitch is the class), two clients, 25% local test."""
    root = tmp_path_factory.mktemp("client-data")
    rng = np.random.default_rng(0)
    labels = np.arange(ROWS) % NUM_CLASSES
    t = np.arange(4000) / 16000
    audio = np.stack(
        [np.sin(2 * np.pi * (300 + 400 * y) * t) + 0.3 * rng.normal(size=t.size) for y in labels]
    )
    store = FeatureStore.build(
        [(audio * 8000).astype(np.int16)],
        num_rows=ROWS,
        settings=FeatureSettings(),
        directory=root / "store",
    )
    parts = [np.arange(0, 24), np.arange(24, ROWS)]
    ClientIndex.build(root / "index", parts, np.arange(ROWS), labels, 0.25, seed=0)
    return store.directory, root / "index"


def make_plan(data, tmp_path: Path, strategy: dict, **model) -> RunPlan:
    scenario = scenario_from_dict(
        {
            "scenario": {"name": "clients", "rounds": 2, "seed": 5},
            "data": {"dataset": "synth-commands", "num_clients": 2, "local_test_fraction": 0.25},
            "partition": {"kind": "iid"},
            "model": {"name": "kws-cnn", "channels": [4, 8], **model},
            "train": {"local_epochs": 3, "batch_size": 6, "lr": 0.1},
            "strategy": {"min_train_nodes": 1, "min_evaluate_nodes": 1, "min_available_nodes": 1}
            | strategy,
        }
    )
    store, index = data
    return RunPlan(scenario, store, store, index, NUM_CLASSES, tmp_path / "state")


def strategy_of(plan: RunPlan):
    return registry.STRATEGIES[plan.scenario.strategy.name].load()(
        plan.scenario.strategy, plan.scenario
    )


def context(cid: int) -> Context:
    return Context(RUN_ID, cid + 1, {"partition-id": cid}, RecordDict(), {})


def train_round(plan, strategy, arrays: ArrayRecord, cids: list[int], server_round: int = 1):
    """The strategy's own train messages, handled by the ClientApp (the scenario's mods and
    the train handler) for ``cids``."""
    random.seed(0)
    config = ConfigRecord(plan.scenario.strategy.client_train_config())
    sent = list(strategy.configure_train(server_round, arrays, config, in_memory_grid(len(cids))))
    sent.sort(key=lambda m: m.metadata.dst_node_id)
    app = client_app.build_client_app(plan)
    replies = [
        app(addressed(message, cid), context(cid)) for message, cid in zip(sent, cids, strict=True)
    ]
    return sent, replies


def addressed(message: Message, cid: int) -> Message:
    """The message as the virtual-client grid delivers it to the slot serving ``cid``."""
    return compat_grid.addressed(message, 1, cid)


def evaluate_message(arrays: ArrayRecord, cid: int, server_round: int = 1) -> Message:
    content = RecordDict({"arrays": arrays, "config": ConfigRecord({"server-round": server_round})})
    return addressed(Message(content, dst_node_id=1, message_type=MessageType.EVALUATE), cid)


def array_keys(message: Message) -> set[str]:
    return {key for record in message.content.array_records.values() for key in record}


def drift(reply: Message, start: ArrayRecord) -> float:
    got, ref = reply.content["arrays"].to_torch_state_dict(), start.to_torch_state_dict()
    return float(sum(((got[k] - ref[k]) ** 2).sum() for k in ref) ** 0.5)


@pytest.fixture(autouse=True)
def _task():
    with flower_task():
        yield


def test_fedprox_with_mu_zero_gives_fedavg_weights_exactly(data, tmp_path):
    results = []
    for strategy in ({"name": "fedavg"}, {"name": "fedprox", "proximal_mu": 0.0}):
        plan = make_plan(data, tmp_path / strategy["name"], strategy)
        flower_strategy, start = strategy_of(plan), initial_shared_arrays(plan)
        sent, replies = train_round(plan, flower_strategy, start, [0, 1])
        assert sent[0].content["config"].get("proximal-mu") == strategy.get("proximal_mu")
        arrays, _ = flower_strategy.aggregate_train(1, replies)
        results.append(arrays.to_torch_state_dict())
    for key, value in results[0].items():
        assert torch.equal(value, results[1][key]), key


def test_fedprox_proximal_term_reduces_client_drift(data, tmp_path):
    drifts = {}
    for mu in (0.0, 1.0):
        plan = make_plan(data, tmp_path / str(mu), {"name": "fedprox", "proximal_mu": mu})
        start = initial_shared_arrays(plan)
        _, replies = train_round(plan, strategy_of(plan), start, [0])
        drifts[mu] = drift(replies[0], start)
    assert 0 < drifts[1.0] < drifts[0.0]


def test_fedavg_with_one_client_equals_centralized_training(data, tmp_path):
    plan = make_plan(data, tmp_path, {"name": "fedavg"})
    strategy = strategy_of(plan)
    _, replies = train_round(plan, strategy, initial_shared_arrays(plan), [0])
    federated, _ = strategy.aggregate_train(1, replies)

    model = plan.initial_model()  # centralized: plain torch training on the same rows
    split = ClientIndex(plan.index_dir).client(0)
    features = torch.from_numpy(FeatureStore.open(plan.train_store).read(split.train_rows))
    labels = torch.from_numpy(split.train_labels.astype(np.int64))
    seed = derive_seed(plan.scenario.scenario.seed, "train", 0, 1)
    train_epochs(model, features, labels, plan.scenario.train, seed)
    for key, value in model.state_dict().items():
        assert torch.equal(federated.to_torch_state_dict()[key], value), key


def test_fedbn_keeps_batch_norm_on_each_client(data, tmp_path):
    plan = make_plan(data, tmp_path, {"name": "fedbn"}, batch_norm=True)
    bn = batch_norm_names(plan.initial_model())
    assert {"features.bn1.running_mean", "features.bn2.weight"} <= bn
    start = initial_shared_arrays(plan)
    assert not bn & set(start.keys()) and "head.weight" in start
    sent, replies = train_round(plan, strategy_of(plan), start, [0, 1])
    for message in [*sent, *replies]:
        assert not bn & array_keys(message)  # BN never travels, down or up
        assert "features.conv1.weight" in array_keys(message)
    states = ClientStateStore(plan.state_dir)
    first, second = states.load(0), states.load(1)
    learned = {name for name in bn if not name.endswith("num_batches_tracked")}  # counters stay
    assert set(first) == set(second) == learned
    for key in ("features.bn1.weight", "features.bn1.running_mean", "features.bn2.running_var"):
        assert not torch.equal(first[key], second[key]), key
    reply = client_app.handle_evaluate(plan, evaluate_message(start, 0), context(0))
    assert not array_keys(reply)
    metrics = reply.content["metrics"]
    assert metrics["pers_loss"] != metrics["eval_loss"]  # own BN statistics vs initial ones


def test_fedper_never_sends_the_head_and_keeps_it_across_restarts(data, tmp_path):
    plan = make_plan(data, tmp_path, {"name": "fedper", "local_layers": ["head"]})
    start = initial_shared_arrays(plan)
    sent, replies = train_round(plan, strategy_of(plan), start, [0, 1])
    for message in [*sent, *replies]:
        keys = array_keys(message)
        assert keys and not any("head" in key for key in keys)
    saved = ClientStateStore(plan.state_dir).load(0)
    assert set(saved) == {"head.weight", "head.bias"}
    restarted = worker.WorkerState(plan)  # a fresh Ray actor: nothing in memory
    own = restarted.own_local(0)
    assert all(torch.equal(own[k], saved[k]) for k in saved)
    assert not torch.equal(own["head.weight"], restarted.initial_local["head.weight"])


def test_a_clients_first_head_is_the_initial_one_whoever_the_actor_trained_before(data, tmp_path):
    """An actor serves many clients: client 1's first round must not start from the head the
    actor just trained for client 0 (it would if the initial head shared the model's storage,
    which would make FedPer depend on which actor served whom)."""
    strategy = {"name": "fedper", "local_layers": ["head"]}
    after_other = make_plan(data, tmp_path / "shared-actor", strategy)
    alone = make_plan(data, tmp_path / "fresh-actor", strategy)
    start = initial_shared_arrays(after_other)
    train_round(after_other, strategy_of(after_other), start, [0, 1])
    train_round(alone, strategy_of(alone), start, [1])
    trained_after, trained_alone = (
        ClientStateStore(p.state_dir).load(1) for p in (after_other, alone)
    )
    assert all(torch.equal(trained_after[k], trained_alone[k]) for k in trained_alone)


def test_freeze_shared_trains_only_the_local_head(data, tmp_path):
    strategy = {"name": "fedper", "local_layers": ["head"], "freeze_shared": True}
    plan = make_plan(data, tmp_path, strategy)
    start = initial_shared_arrays(plan)
    _, replies = train_round(plan, strategy_of(plan), start, [0])
    assert drift(replies[0], start) == 0.0
    head = ClientStateStore(plan.state_dir).load(0)["head.weight"]
    assert not torch.equal(head, plan.initial_model().state_dict()["head.weight"])


def test_evaluation_without_local_part_reports_the_same_model_twice(data, tmp_path):
    plan = make_plan(data, tmp_path, {"name": "fedavg"})
    reply = client_app.handle_evaluate(
        plan, evaluate_message(initial_shared_arrays(plan), 1), context(1)
    )
    metrics = reply.content["metrics"]
    assert metrics["pers_accuracy"] == metrics["eval_accuracy"]
    assert metrics["num-examples"] == 6
    assert not (tmp_path / "state").exists()  # no local part, nothing written


def test_qfedavg_client_reports_the_loss_of_the_global_model(data, tmp_path):
    plan = make_plan(data, tmp_path, {"name": "qfedavg", "q": 1.0})
    _, replies = train_round(plan, strategy_of(plan), initial_shared_arrays(plan), [0])
    metrics = replies[0].content["metrics"]
    # The mean cross-entropy of the model received (the initial one) on the client's training
    # clips, before it trains; training then lowers it (on average over the local epochs, by a
    # small margin on these clips).
    model = plan.initial_model().eval()
    split = ClientIndex(plan.index_dir).client(0)
    features = torch.from_numpy(FeatureStore.open(plan.train_store).read(split.train_rows))
    labels = torch.from_numpy(split.train_labels.astype(np.int64))
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(features), labels).item()
    assert metrics["loss_at_global"] == pytest.approx(expected, rel=1e-6)
    assert metrics["loss_at_global"] > metrics["train_loss"]


def test_client_state_store_round_trip(tmp_path):
    store = ClientStateStore(tmp_path / "s")
    assert store.load(3) is None
    store.save(3, {"head.weight": torch.ones(2, 2)})
    store.save(3, {"head.weight": torch.zeros(2, 2)})
    assert torch.equal(store.load(3)["head.weight"], torch.zeros(2, 2))
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["client-3.pt"]


@pytest.mark.parametrize("name", ["qfedavg", "fedavg", "fedadam", "fedmedian"])
def test_batch_norm_model_aggregates_with_every_kind_of_rule(data, tmp_path, name):
    """BatchNorm's integer counter never travels (Flower's QFedAvg scales every array in place
    and fails on int64); running statistics do, and every rule aggregates the float arrays."""
    plan = make_plan(data, tmp_path, {"name": name}, batch_norm=True)
    start = initial_shared_arrays(plan)
    keys = set(start.keys())
    assert "features.bn1.running_mean" in keys
    assert not any(key.endswith("num_batches_tracked") for key in keys)
    strategy = strategy_of(plan)
    _, replies = train_round(plan, strategy, start, [0, 1])
    arrays, _ = strategy.aggregate_train(1, replies)
    assert arrays is not None and set(arrays.keys()) == keys


@pytest.mark.parametrize("rows", [256, 232, 100, 65])
def test_evaluating_in_slices_keeps_every_logit_bit_of_the_whole_batch(rows: int) -> None:
    """simfl.training evaluates on a CPU in slices of 32 rows (cache-sized): each row's logits
    must be the ones the whole batch gives, so results do not depend on the slicing."""
    from simfl.schema.model import KwsCnnParams
    from simfl.training import CPU_FORWARD_ROWS, forward_in_chunks

    model = registry.MODELS["kws-cnn"].load()(KwsCnnParams(channels=[16, 32]), 12).eval()
    x = torch.from_numpy(np.random.default_rng(rows).normal(size=(rows, 40, 101)).astype("f4"))
    sliced: list[int] = []
    model.register_forward_pre_hook(lambda _, args: sliced.append(len(args[0])))
    with torch.no_grad():
        whole = model(x)
        sliced.clear()
        assert torch.equal(forward_in_chunks(model, x), whole)
    assert sliced[:-1] == [CPU_FORWARD_ROWS] * (len(sliced) - 1)
    assert CPU_FORWARD_ROWS <= sliced[-1] < 2 * CPU_FORWARD_ROWS  # no slice of a few rows
