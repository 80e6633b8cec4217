"""FedDyn against a direct NumPy transcription of Acar et al. 2021 (ICLR), Algorithm 1.

Three of four clients (least squares, heterogeneous optima) are sampled each round; each
approximates line 5's argmin by K full-batch SGD steps on L_k(θ) − ⟨g_k, θ⟩ + α/2‖θ − θ^{t−1}‖²
(as the paper's experiments do), updates g_k by line 6, and the server applies lines 8-9 with
m = 4. Our side: the registry's strategy on real Flower Messages and simfl's client step
(:func:`dynamic_term` through the gradient hooks, then :func:`updated_linear`). Three rounds,
client and server state carried over, equal to float tolerance; α = 0 is FedAvg's unweighted
mean.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from flower_helpers import flower_task, in_memory_grid
from flwr.app import Array, ArrayRecord, ConfigRecord
from least_squares import reply, sgd_trainer

from simfl import registry
from simfl.config import scenario_from_dict
from simfl.strategies.feddyn_client import dynamic_term, updated_linear
from simfl.strategies.gradient_terms import with_gradient_terms

DIM, CLIENTS, SAMPLED, ROWS, LR, STEPS, ROUNDS = 4, 4, 3, 6, 0.05, 4, 3


def problem(seed: int = 2) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    a = [rng.normal(size=(ROWS, DIM)) for _ in range(CLIENTS)]
    b = [rng.normal(loc=i, size=ROWS) for i in range(CLIENTS)]
    return a, b, rng.normal(size=DIM)


def sampled(server_round: int) -> list[int]:
    """The clients the strategy samples in a round (Flower's, seeded as the test seeds it)."""
    return SAMPLES[server_round]


SAMPLES: dict[int, list[int]] = {}


def paper(alpha: float) -> list[np.ndarray]:
    a, b, theta = problem()
    g = [np.zeros(DIM) for _ in range(CLIENTS)]
    h = np.zeros(DIM)
    history = []
    for server_round in range(1, ROUNDS + 1):
        thetas = []
        for k in sampled(server_round):
            y = theta.copy()
            for _ in range(STEPS):  # line 5, by gradient steps
                grad = a[k].T @ (a[k] @ y - b[k]) / ROWS - g[k] + alpha * (y - theta)
                y = y - LR * grad
            g[k] = g[k] - alpha * (y - theta)  # line 6
            thetas.append(y)
        h = h - alpha / CLIENTS * sum(t - theta for t in thetas)  # line 8
        theta = np.mean(thetas, axis=0) - (h / alpha if alpha > 0 else 0.0)  # line 9
        history.append(theta)
    return history


def build(alpha: float):
    raw = {
        "scenario": {"name": "feddyn-paper", "rounds": ROUNDS},
        "data": {"dataset": "synth-commands", "num_clients": CLIENTS},
        "partition": {"kind": "iid"},
        "model": {"name": "kws-cnn"},
        "train": {"lr": LR},
        "strategy": {
            "name": "feddyn",
            "alpha": alpha,
            "fraction_train": SAMPLED / CLIENTS,
            "min_train_nodes": SAMPLED,
            "min_available_nodes": CLIENTS,
        },
    }
    scenario = scenario_from_dict(raw, "feddyn.toml")
    return registry.STRATEGIES["feddyn"].load()(scenario.strategy, scenario)


def ours(alpha: float) -> list[np.ndarray]:
    a, b, theta0 = problem()
    strategy = build(alpha)
    theta = ArrayRecord({"weight": Array(theta0[None, :])})
    linear = [torch.zeros(1, DIM, dtype=torch.float64) for _ in range(CLIENTS)]
    history = []
    for server_round in range(1, ROUNDS + 1):
        random.seed(server_round)
        grid = in_memory_grid(CLIENTS)
        nodes = sorted(grid.get_node_ids())
        messages = list(strategy.configure_train(server_round, theta, ConfigRecord(), grid))
        SAMPLES[server_round] = sorted(nodes.index(m.metadata.dst_node_id) for m in messages)
        replies = []
        for message in sorted(messages, key=lambda m: m.metadata.dst_node_id):
            k = nodes.index(message.metadata.dst_node_id)
            anchor = message.content["arrays"].to_torch_state_dict()["weight"]
            model = torch.nn.Linear(DIM, 1, bias=False).double()
            model.load_state_dict({"weight": anchor})
            terms = {"weight": dynamic_term(linear[k], anchor.clone(), alpha)}
            with_gradient_terms(sgd_trainer(a[k], b[k], STEPS, LR), terms, [])(
                SimpleNamespace(model=model)
            )
            trained = model.weight.detach().clone()
            linear[k] = updated_linear(linear[k], trained, anchor, alpha)
            metrics = {"num-examples": ROWS, "train_loss": 1.0}
            replies.append(reply(message, trained.numpy(), metrics))
        theta, _ = strategy.aggregate_train(server_round, replies)
        history.append(theta["weight"].numpy()[0])
    return history


@pytest.mark.parametrize("alpha", [0.1, 0.0])
def test_feddyn_matches_acar_2021_algorithm_1(alpha):
    with flower_task():
        got = ours(alpha)
    assert all(len(SAMPLES[r]) == SAMPLED for r in range(1, ROUNDS + 1))
    for mine, expected in zip(got, paper(alpha), strict=True):
        np.testing.assert_allclose(mine, expected, rtol=0, atol=1e-10)


def test_feddyn_with_alpha_zero_is_fedavgs_unweighted_mean():
    a, b, theta = problem()
    with flower_task():
        first = ours(0.0)[0]
    plain = []
    for k in SAMPLES[1]:
        y = theta.copy()
        for _ in range(STEPS):
            y = y - LR * a[k].T @ (a[k] @ y - b[k]) / ROWS
        plain.append(y)
    np.testing.assert_allclose(first, np.mean(plain, axis=0), rtol=0, atol=1e-12)


def test_a_negative_alpha_is_one_line(tmp_path, cli):
    from tiny_scenario import tiny_text

    path = tmp_path / "dyn.toml"
    path.write_text(tiny_text(tmp_path / "r", tmp_path / "c"))
    done = cli("validate", str(path), "--set", "strategy.name=feddyn", "--set", "strategy.alpha=-1")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "strategy.alpha" in line and "greater than or equal to 0" in line
