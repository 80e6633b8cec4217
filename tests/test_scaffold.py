"""SCAFFOLD against a direct NumPy transcription of Karimireddy et al. 2020, Algorithm 1.

Three clients with least-squares objectives f_i(w) = ½‖A_i w − b_i‖²/m_i take K full-batch
steps per round. Our side runs the registry's strategy on real Flower Messages and the client
step as simfl's client mod composes it (the gradient correction of
:func:`with_gradient_terms` around a plain SGD trainer, then :func:`control_update`); the
reference is lines 8-17 of the paper with option II (line 12). Both run three rounds with the
server and client control variates carried over, and must agree to float tolerance.
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
from simfl.strategies.gradient_terms import constant, with_gradient_terms
from simfl.strategies.scaffold import CONTROL_KEY, DELTA_KEY
from simfl.strategies.scaffold_client import control_update

DIM, CLIENTS, ROWS, LR, ROUNDS = 4, 3, 6, 0.1, 3


def problem(seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    a = [rng.normal(size=(ROWS, DIM)) for _ in range(CLIENTS)]
    b = [rng.normal(loc=i, size=ROWS) for i in range(CLIENTS)]  # heterogeneous optima
    return a, b, rng.normal(size=DIM)


def gradient(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    return a.T @ (a @ w - b) / len(b)


def paper(steps: int, eta_g: float, population: int, rho: float = 0.0) -> list[np.ndarray]:
    """Algorithm 1, every client sampled each round (S = all), option II; x after each round.
    With momentum ρ (simfl's generalization) the corrected gradient drives torch's momentum
    SGD and option II divides by the local work ‖a‖₁ = Σ_k (1 − ρ^k)/(1 − ρ) instead of K."""
    a, b, x = problem()
    c, c_i = np.zeros(DIM), [np.zeros(DIM) for _ in range(CLIENTS)]
    history = []
    for _ in range(ROUNDS):
        dys, dcs = [], []
        for i in range(CLIENTS):
            y, v = x.copy(), np.zeros(DIM)
            for _ in range(steps):  # line 10
                v = rho * v + gradient(a[i], b[i], y) - c_i[i] + c
                y = y - LR * v
            work = sum((1 - rho**k) / (1 - rho) for k in range(1, steps + 1))
            c_plus = c_i[i] - c + (x - y) / (work * LR)  # line 12, option II
            dys.append(y - x)
            dcs.append(c_plus - c_i[i])
            c_i[i] = c_plus
        x = x + eta_g * np.mean(dys, axis=0)  # line 17
        c = c + len(dcs) / population * np.mean(dcs, axis=0)
        history.append(x)
    return history


def build(eta_g: float, population: int, weighting: str = "uniform"):
    raw = {
        "scenario": {"name": "scaffold-paper", "rounds": ROUNDS},
        "data": {"dataset": "synth-commands", "num_clients": population},
        "partition": {"kind": "iid"},
        "model": {"name": "kws-cnn"},
        "train": {"lr": LR},
        "strategy": {
            "name": "scaffold",
            "server_learning_rate": eta_g,
            "weighting": weighting,
            "fraction_train": CLIENTS / population,
            "min_train_nodes": CLIENTS,
            "min_available_nodes": CLIENTS,
        },
    }
    scenario = scenario_from_dict(raw, "scaffold.toml")
    return registry.STRATEGIES["scaffold"].load()(scenario.strategy, scenario)


def ours(steps: int, eta_g: float, population: int, rho: float = 0.0) -> list[np.ndarray]:
    a, b, x0 = problem()
    strategy = build(eta_g, population)
    x = ArrayRecord({"weight": Array(x0[None, :])})
    states: list[dict[str, torch.Tensor]] = [{} for _ in range(CLIENTS)]
    history = []
    for server_round in range(1, ROUNDS + 1):
        random.seed(server_round)
        grid = in_memory_grid(CLIENTS)
        messages = list(strategy.configure_train(server_round, x, ConfigRecord(), grid))
        replies = []
        for i, message in enumerate(sorted(messages, key=lambda m: m.metadata.dst_node_id)):
            shared = message.content["arrays"].to_torch_state_dict()
            server = message.content[CONTROL_KEY].to_torch_state_dict()
            c = {"weight": server.get("weight", torch.zeros_like(shared["weight"]))}
            c_i = {"weight": states[i].get("weight", torch.zeros_like(c["weight"]))}
            model = torch.nn.Linear(DIM, 1, bias=False).double()
            model.load_state_dict(shared)
            counted: list[int] = []
            corrections = {"weight": constant(c["weight"] - c_i["weight"])}
            with_gradient_terms(sgd_trainer(a[i], b[i], steps, LR, rho), corrections, counted)(
                SimpleNamespace(model=model)
            )
            y = {"weight": model.weight.detach().clone()}
            c_plus = control_update(c, c_i, shared, y, len(counted), LR, rho)
            assert len(counted) == steps
            delta = {"weight": Array((c_plus["weight"] - c_i["weight"]).numpy())}
            states[i] = c_plus
            metrics = {"num-examples": ROWS, "train_loss": 1.0}
            replies.append(
                reply(message, y["weight"].numpy(), metrics, **{DELTA_KEY: ArrayRecord(delta)})
            )
        x, _ = strategy.aggregate_train(server_round, replies)
        history.append(x["weight"].numpy()[0])
    return history


@pytest.mark.parametrize(
    ("steps", "eta_g", "population", "rho"), [(5, 1.0, 3, 0.0), (3, 0.5, 10, 0.0), (6, 1.0, 3, 0.9)]
)
def test_scaffold_matches_karimireddy_2020_algorithm_1(steps, eta_g, population, rho):
    with flower_task():
        got = ours(steps, eta_g, population, rho)
    expected = paper(steps, eta_g, population, rho)
    for round_index, (mine, reference) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_allclose(mine, reference, rtol=0, atol=1e-10, err_msg=f"{round_index}")


def test_scaffold_with_one_step_and_zero_variates_is_fedavg_in_its_first_round():
    """c = c_i = 0 before any round: one corrected step is one SGD step, and η_g = 1 with
    uniform weights is FedAvg's mean over equally large clients."""
    a, b, x0 = problem()
    with flower_task():
        first = ours(1, 1.0, CLIENTS)[0]
    fedavg = np.mean([x0 - LR * gradient(a[i], b[i], x0) for i in range(CLIENTS)], axis=0)
    np.testing.assert_allclose(first, fedavg, rtol=0, atol=1e-12)
