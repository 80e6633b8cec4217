"""FedNova against a direct NumPy transcription of Wang et al. 2020 (NeurIPS), Eq. 6-7.

Three clients with least-squares objectives take different numbers of full-batch SGD steps
(τ_i = 2, 5, 9), with and without momentum. Our side: the registry's strategy on real Flower
Messages, each client's steps counted by simfl's local-steps trainer wrapper (the number it
reports); the reference: x ← x − τ_eff Σ p_i (x − y_i)/‖a_i‖₁ with the paper's a_i for SGD
and for momentum SGD (Sec. 4), p_i = n_i/n. Three rounds, equal to float tolerance; with equal
τ_i it is FedAvg (the paper's own remark).
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
from simfl.schema.strategy import LOCAL_STEPS_KEY
from simfl.strategies.local_steps import counting

DIM, LR, ROUNDS = 4, 0.05, 3
ROWS = (4, 6, 10)  # n_i: p_i = n_i / n


def problem(seed: int = 1) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    a = [rng.normal(size=(rows, DIM)) for rows in ROWS]
    b = [rng.normal(loc=i, size=rows) for i, rows in enumerate(ROWS)]
    return a, b, rng.normal(size=DIM)


def local_sgd(a, b, x, steps, momentum):
    """Torch's SGD rule (v ← ρ v + g; y ← y − η v) in NumPy."""
    y, v = x.copy(), np.zeros_like(x)
    for _ in range(steps):
        v = momentum * v + a.T @ (a @ y - b) / len(b)
        y = y - LR * v
    return y


def paper(steps: tuple[int, ...], momentum: float) -> list[np.ndarray]:
    a, b, x = problem()
    p = np.array(ROWS, dtype=float) / sum(ROWS)
    norms = [
        sum((1 - momentum ** (tau - k)) / (1 - momentum) for k in range(tau))  # ‖a_i‖₁
        for tau in steps
    ]
    tau_eff = float(p @ norms)
    history = []
    for _ in range(ROUNDS):
        ys = [local_sgd(a[i], b[i], x, steps[i], momentum) for i in range(len(ROWS))]
        x = x - tau_eff * sum(p[i] * (x - ys[i]) / norms[i] for i in range(len(ROWS)))
        history.append(x)
    return history


def build(momentum: float):
    raw = {
        "scenario": {"name": "fednova-paper", "rounds": ROUNDS},
        "data": {"dataset": "synth-commands", "num_clients": len(ROWS)},
        "partition": {"kind": "iid"},
        "model": {"name": "kws-cnn"},
        "train": {"lr": LR, "momentum": momentum},
        "strategy": {"name": "fednova", "min_train_nodes": 3, "min_available_nodes": 3},
    }
    scenario = scenario_from_dict(raw, "fednova.toml")
    return registry.STRATEGIES["fednova"].load()(scenario.strategy, scenario)


def ours(steps: tuple[int, ...], momentum: float) -> list[np.ndarray]:
    a, b, x0 = problem()
    strategy = build(momentum)
    x = ArrayRecord({"weight": Array(x0[None, :])})
    history = []
    for server_round in range(1, ROUNDS + 1):
        random.seed(server_round)
        messages = list(
            strategy.configure_train(server_round, x, ConfigRecord(), in_memory_grid(len(ROWS)))
        )
        replies = []
        for i, message in enumerate(sorted(messages, key=lambda m: m.metadata.dst_node_id)):
            model = torch.nn.Linear(DIM, 1, bias=False).double()
            model.load_state_dict(message.content["arrays"].to_torch_state_dict())
            counted: list[int] = []
            counting(sgd_trainer(a[i], b[i], steps[i], LR, momentum), counted)(
                SimpleNamespace(model=model)
            )
            metrics = {"num-examples": ROWS[i], "train_loss": 1.0, LOCAL_STEPS_KEY: len(counted)}
            replies.append(reply(message, model.weight.detach().numpy(), metrics))
        x, _ = strategy.aggregate_train(server_round, replies)
        history.append(x["weight"].numpy()[0])
    return history


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_fednova_matches_wang_2020(momentum):
    with flower_task():
        got = ours((2, 5, 9), momentum)
    for mine, expected in zip(got, paper((2, 5, 9), momentum), strict=True):
        np.testing.assert_allclose(mine, expected, rtol=0, atol=1e-10)


def test_fednova_with_equal_local_steps_is_fedavg():
    a, b, x = problem()
    with flower_task():
        first = ours((3, 3, 3), 0.0)[0]
    p = np.array(ROWS, dtype=float) / sum(ROWS)
    fedavg = sum(p[i] * local_sgd(a[i], b[i], x, 3, 0.0) for i in range(len(ROWS)))
    np.testing.assert_allclose(first, fedavg, rtol=0, atol=1e-12)


def test_fednova_refuses_an_optimizer_other_than_sgd(tmp_path, cli):
    from tiny_scenario import tiny_text

    path = tmp_path / "nova.toml"
    path.write_text(tiny_text(tmp_path / "r", tmp_path / "c"))
    done = cli(
        "validate", str(path), "--set", "strategy.name=fednova", "--set", "train.optimizer=adam"
    )
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert 'fednova normalizes by SGD\'s local work: train.optimizer = "sgd"' in line
