"""Our configured strategies against independent NumPy versions of the papers' update rules.

Fixed client results go through real Flower Messages into the strategy that the scenario
builds (registry factory); the new global weights must match the paper's formula to 1e-6.
Where Flower's implementation departs from the paper, the test says how (and checks it).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from flower_helpers import flower_task, in_memory_grid
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from simfl import registry
from simfl.config import scenario_from_dict
from simfl.engine.server_app import like
from simfl.schema.strategy import LOSS_AT_GLOBAL_KEY

pytestmark = pytest.mark.usefixtures("frozen_gc")  # Flower collects per reply

NUM_CLIENTS = 5
SHAPES = {"conv.weight": (2, 3), "conv.bias": (3,), "head.weight": (4, 2)}
BASE = {
    "scenario": {"name": "paper", "rounds": 3},
    "data": {"dataset": "synth-commands", "num_clients": NUM_CLIENTS},
    "partition": {"kind": "iid"},
    "model": {"name": "kws-cnn"},
    "train": {"lr": 0.05},
}
Weights = dict[str, np.ndarray]


def build(strategy: dict, num_clients: int = NUM_CLIENTS):
    sampling = {"min_train_nodes": num_clients, "min_available_nodes": num_clients}
    data = {**BASE["data"], "num_clients": num_clients}
    scenario = scenario_from_dict({**BASE, "data": data, "strategy": sampling | strategy})
    entry = registry.STRATEGIES[scenario.strategy.name]
    return entry.load()(scenario.strategy, scenario)


def random_weights(rng: np.random.Generator, scale: float = 1.0) -> Weights:
    return {k: rng.normal(scale=scale, size=s) for k, s in SHAPES.items()}


def client_results(
    rng: np.random.Generator, global_w: Weights, num_clients: int = NUM_CLIENTS
) -> list[Weights]:
    """Honest updates near the global model (four by default) and one Byzantine outlier."""
    honest = [
        {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in global_w.items()}
        for _ in range(num_clients - 1)
    ]
    return [*honest, {k: v + 50.0 for k, v in global_w.items()}]


def as_record(weights: Weights) -> ArrayRecord:
    return ArrayRecord({k: Array(np.asarray(v)) for k, v in weights.items()})


def run_round(
    strategy,
    server_round: int,
    global_w: Weights,
    clients: list[Weights],
    sizes: list[int],
    losses: list[float] | None = None,
) -> Weights:
    """configure_train on a real grid, one reply per sampled node, aggregate_train."""
    random.seed(server_round)
    grid = in_memory_grid(len(clients))
    config = ConfigRecord()
    messages = list(strategy.configure_train(server_round, as_record(global_w), config, grid))
    assert len(messages) == len(clients)
    replies = []
    for i, (message, weights) in enumerate(zip(messages, clients, strict=True)):
        metrics = {"num-examples": sizes[i], "train_loss": 1.0}
        if losses:
            metrics[LOSS_AT_GLOBAL_KEY] = losses[i]
        content = RecordDict({"arrays": as_record(weights), "metrics": MetricRecord(metrics)})
        replies.append(Message(content=content, reply_to=message))
    arrays, _ = strategy.aggregate_train(server_round, replies)
    return {k: arrays[k].numpy() for k in SHAPES}


def assert_close(got: Weights, expected: Weights) -> None:
    for k in SHAPES:
        np.testing.assert_allclose(got[k], expected[k], rtol=0, atol=1e-6, err_msg=k)


def weighted_mean(clients: list[Weights], sizes: list[int]) -> Weights:
    total = float(sum(sizes))
    return {k: sum(n / total * c[k] for c, n in zip(clients, sizes, strict=True)) for k in SHAPES}


@pytest.fixture(autouse=True)
def _task():
    with flower_task():
        yield


def rounds(strategy, reference, sizes, num_rounds=3, seed=0):
    """Run both for several rounds (server state such as momentum must carry over)."""
    rng = np.random.default_rng(seed)
    global_w = random_weights(rng)
    ref_w = {k: v.copy() for k, v in global_w.items()}
    for t in range(1, num_rounds + 1):
        clients = client_results(rng, global_w, len(sizes))
        global_w = run_round(strategy, t, global_w, clients, sizes)
        ref_w = reference(t, ref_w, clients, sizes)
        assert_close(global_w, ref_w)


# ----------------------------------------------------------------------- Hsu et al. 2019


def test_fedavgm_matches_hsu_2019():
    """v <- beta v + Delta, w <- w - eta v, Delta = w - sum_k n_k/n w_k (v_0 = 0)."""
    beta, eta = 0.9, 1.0
    state: dict[str, Weights] = {}

    def reference(t, w, clients, sizes):
        delta = {k: w[k] - weighted_mean(clients, sizes)[k] for k in SHAPES}
        v = state.get("v", {k: np.zeros(s) for k, s in SHAPES.items()})
        state["v"] = {k: beta * v[k] + delta[k] for k in SHAPES}
        return {k: w[k] - eta * state["v"][k] for k in SHAPES}

    strategy = build({"name": "fedavgm", "server_momentum": beta, "server_learning_rate": eta})
    rounds(strategy, reference, sizes=[10, 20, 30, 40, 50])


# ----------------------------------------------------------------------- Reddi et al. 2021


def reddi(kind: str, eta: float, beta_1: float, beta_2: float, tau: float, v_init: float):
    """Algorithm 2 of Reddi et al. (ICLR 2021): FedAdagrad / FedYogi / FedAdam.

    Delta_t = mean of client deltas; m_t = b1 m + (1-b1) Delta_t; v_t per optimizer;
    x_{t+1} = x_t + eta m_t / (sqrt(v_t) + tau). ``eta`` may depend on t (see FedAdam).
    """
    state: dict[str, Weights] = {}

    def reference(t, x, clients, sizes):
        mean = {k: np.mean([c[k] for c in clients], axis=0) for k in SHAPES}
        delta = {k: mean[k] - x[k] for k in SHAPES}
        m = state.get("m", {k: np.zeros(s) for k, s in SHAPES.items()})
        v = state.get("v", {k: np.full(s, v_init) for k, s in SHAPES.items()})
        m = {k: beta_1 * m[k] + (1 - beta_1) * delta[k] for k in SHAPES}
        sq = {k: delta[k] ** 2 for k in SHAPES}
        if kind == "adagrad":
            v = {k: v[k] + sq[k] for k in SHAPES}
        elif kind == "yogi":
            v = {k: v[k] - (1 - beta_2) * sq[k] * np.sign(v[k] - sq[k]) for k in SHAPES}
        else:
            v = {k: beta_2 * v[k] + (1 - beta_2) * sq[k] for k in SHAPES}
        state["m"], state["v"] = m, v
        step = eta(t) if callable(eta) else eta
        return {k: x[k] + step * m[k] / (np.sqrt(v[k]) + tau) for k in SHAPES}

    return reference


EQUAL = [30] * NUM_CLIENTS  # the paper averages deltas unweighted; Flower weights by size


def test_fedadagrad_matches_reddi_2021():
    # By default (Flower's FedAdagrad) beta_1 = 0 (no momentum) and v_{-1} = 0.
    strategy = build({"name": "fedadagrad", "eta": 0.1, "tau": 1e-3})
    rounds(strategy, reddi("adagrad", 0.1, 0.0, 0.0, 1e-3, v_init=0.0), EQUAL)


# tau = 0.3 makes v_{-1} = tau^2 = 0.09 visible next to (1 - beta_2) Delta^2 ~ 1 (Delta ~ 10).
PAPER_TAU = 0.3


@pytest.mark.parametrize(("v0", "v_init"), [("zero", 0.0), ("tau_squared", PAPER_TAU**2)])
def test_fedadagrad_with_momentum_matches_reddi_2021(v0, v_init):
    """The paper's FedAdagrad keeps the first moment: m = b1 m + (1 - b1) Delta, b1 = 0.9."""
    strategy = build({"name": "fedadagrad", "eta": 0.1, "tau": PAPER_TAU, "beta_1": 0.9, "v0": v0})
    rounds(strategy, reddi("adagrad", 0.1, 0.9, 0.0, PAPER_TAU, v_init), EQUAL, num_rounds=4)


def test_fedadagrad_momentum_changes_the_rule():
    """Guard against a test that cannot fail: beta_1 = 0.9 is not Flower's beta_1 = 0."""
    strategy = build({"name": "fedadagrad", "eta": 0.1, "tau": PAPER_TAU, "beta_1": 0.9})
    with pytest.raises(AssertionError):
        rounds(strategy, reddi("adagrad", 0.1, 0.0, 0.0, PAPER_TAU, 0.0), EQUAL, num_rounds=4)


def test_fedyogi_matches_reddi_2021():
    strategy = build({"name": "fedyogi", "eta": 0.01, "beta_1": 0.9, "beta_2": 0.99})
    rounds(strategy, reddi("yogi", 0.01, 0.9, 0.99, 1e-3, v_init=0.0), EQUAL)


@pytest.mark.parametrize(("v0", "v_init"), [("zero", 0.0), ("tau_squared", PAPER_TAU**2)])
def test_fedyogi_from_tau_squared_matches_reddi_2021(v0, v_init):
    strategy = build(
        {"name": "fedyogi", "eta": 0.01, "beta_1": 0.9, "beta_2": 0.99, "tau": PAPER_TAU, "v0": v0}
    )
    rounds(strategy, reddi("yogi", 0.01, 0.9, 0.99, PAPER_TAU, v_init), EQUAL, num_rounds=4)


@pytest.mark.parametrize(("v0", "v_init"), [("zero", 0.0), ("tau_squared", PAPER_TAU**2)])
def test_fedadam_without_bias_correction_matches_reddi_2021_algorithm_2(v0, v_init):
    """``bias_correction = "none"``: x + eta m_t / (sqrt(v_t) + tau), over 4 rounds."""
    b1, b2, eta = 0.9, 0.99, 0.1
    strategy = build(
        {
            "name": "fedadam",
            "eta": eta,
            "beta_1": b1,
            "beta_2": b2,
            "tau": PAPER_TAU,
            "bias_correction": "none",
            "v0": v0,
        }
    )
    rounds(strategy, reddi("adam", eta, b1, b2, PAPER_TAU, v_init), EQUAL, num_rounds=4)


UNEQUAL = [10, 20, 30, 40, 50]


@pytest.mark.parametrize("name", ["fedadam", "fedyogi", "fedadagrad"])
def test_fedopt_paper_settings_run_algorithm_2_with_unequal_clients(name):
    """All of Algorithm 2 at once: unweighted mean delta, v_{-1} = tau^2, beta_1 = 0.9, and for
    FedAdam no bias correction; clients of different sizes, so weighting matters."""
    kind, eta = {
        "fedadam": ("adam", 0.1),
        "fedyogi": ("yogi", 0.01),
        "fedadagrad": ("adagrad", 0.1),
    }[name]
    paper = {"v0": "tau_squared", "weighting": "uniform", "beta_1": 0.9, "tau": PAPER_TAU}
    paper |= {"bias_correction": "none"} if name == "fedadam" else {}
    strategy = build({"name": name, "eta": eta} | paper)
    beta_2 = 0.0 if name == "fedadagrad" else 0.99
    reference = reddi(kind, eta, 0.9, beta_2, PAPER_TAU, PAPER_TAU**2)
    rounds(strategy, reference, UNEQUAL, num_rounds=4)


def test_fedopt_default_weighting_is_by_examples():
    """Guard: with unequal clients Flower's weighted Delta is not Algorithm 2's mean."""
    strategy = build({"name": "fedyogi", "tau": PAPER_TAU, "v0": "tau_squared"})
    with pytest.raises(AssertionError):
        rounds(strategy, reddi("yogi", 0.01, 0.9, 0.99, PAPER_TAU, PAPER_TAU**2), UNEQUAL)


def test_tau_squared_start_changes_the_rule():
    """Guard: with v0 = "tau_squared" the v_{-1} = 0 reference no longer matches."""
    strategy = build(
        {"name": "fedadam", "tau": PAPER_TAU, "bias_correction": "none", "v0": "tau_squared"}
    )
    with pytest.raises(AssertionError):
        rounds(strategy, reddi("adam", 0.1, 0.9, 0.99, PAPER_TAU, 0.0), EQUAL, num_rounds=4)


def test_fedadam_matches_reddi_2021_with_flowers_bias_correction():
    """Flower's FedAdam deviates from Algorithm 2: it scales eta by Adam's bias correction
    sqrt(1 - b2^(t+1)) / (1 - b1^(t+1)) (with t+1, not t). Everything else is the paper's."""
    b1, b2, eta = 0.9, 0.99, 0.1
    corrected = lambda t: eta * np.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1))  # noqa: E731
    strategy = build({"name": "fedadam", "eta": eta, "beta_1": b1, "beta_2": b2})
    rounds(strategy, reddi("adam", corrected, b1, b2, 1e-3, v_init=0.0), EQUAL)
    with pytest.raises(AssertionError):  # the paper's uncorrected step is not what Flower does
        strategy = build({"name": "fedadam", "eta": eta, "beta_1": b1, "beta_2": b2})
        rounds(strategy, reddi("adam", eta, b1, b2, 1e-3, v_init=0.0), EQUAL)


def test_adaptive_global_model_keeps_the_models_dtype():
    """Flower's FedAdam returns float64 (numpy float64 scalars times float32 weights); the
    server casts back, so the global model never doubles its bytes on the wire."""
    strategy = build({"name": "fedadam"})
    rng = np.random.default_rng(0)
    global_w = {k: v.astype(np.float32) for k, v in random_weights(rng).items()}
    clients = [
        {k: v.astype(np.float32) for k, v in c.items()} for c in client_results(rng, global_w)
    ]
    random.seed(1)
    grid = in_memory_grid(NUM_CLIENTS)
    sent = as_record(global_w)
    messages = list(strategy.configure_train(1, sent, ConfigRecord(), grid))
    replies = [
        Message(
            content=RecordDict(
                {"arrays": as_record(w), "metrics": MetricRecord({"num-examples": 1})}
            ),
            reply_to=m,
        )
        for m, w in zip(messages, clients, strict=True)
    ]
    aggregated, _ = strategy.aggregate_train(1, replies)
    assert {aggregated[k].dtype for k in SHAPES} == {"float64"}  # Flower's own output
    kept = like(aggregated, sent)
    assert {kept[k].dtype for k in SHAPES} == {"float32"}
    for k in SHAPES:
        np.testing.assert_allclose(kept[k].numpy(), aggregated[k].numpy(), rtol=1e-6)
