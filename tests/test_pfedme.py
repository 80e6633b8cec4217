"""pFedMe against a direct NumPy transcription of T. Dinh et al. 2020 (NeurIPS), Algorithm 1.

Two softmax-regression clients (tiny tensors), R = 3 local rounds of one full batch each, K = 4
inner steps: line 7 (θ ← θ − η_p ∇[f(θ) + λ/2‖θ − w‖²], θ carried over), line 8
(w ← w − ηλ(w − θ)), and the server's line 10 with β = 0.7 over two rounds. Our side: the
registry's strategy on real Flower Messages and :func:`pfedme_steps` on a torch model, the
loss simfl's client uses; equal to float tolerance, personal models included.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from flower_helpers import flower_task, in_memory_grid
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from simfl import registry
from simfl.config import scenario_from_dict
from simfl.strategies.pfedme import pfedme_steps
from simfl.strategies.pfedme_client import BatchLoss

DIM, CLASSES, ROWS, CLIENTS = 4, 3, 8, 2
LAM, K, PERSONAL_LR, LR, BETA, R, ROUNDS = 2.0, 4, 0.05, 0.1, 0.7, 3, 2


def data(seed: int = 4):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(ROWS, DIM)) for _ in range(CLIENTS)]
    ys = [rng.integers(0, CLASSES, size=ROWS) for _ in range(CLIENTS)]
    w0 = {"weight": rng.normal(size=(CLASSES, DIM)), "bias": rng.normal(size=CLASSES)}
    return xs, ys, w0


def ce_gradient(p, x, y):
    logits = x @ p["weight"].T + p["bias"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    g = (e / e.sum(axis=1, keepdims=True) - np.eye(CLASSES)[y]) / len(y)
    return {"weight": g.T @ x, "bias": g.sum(axis=0)}


def paper() -> tuple[list[dict], list[dict]]:
    xs, ys, w = data()
    history, personal = [], [None] * CLIENTS
    for _ in range(ROUNDS):
        sent = []
        for i in range(CLIENTS):
            local = {k: v.copy() for k, v in w.items()}
            theta = {k: v.copy() for k, v in w.items()}
            for _ in range(R):
                for _ in range(K):  # line 7
                    g = ce_gradient(theta, xs[i], ys[i])
                    theta = {
                        k: theta[k] - PERSONAL_LR * (g[k] + LAM * (theta[k] - local[k]))
                        for k in theta
                    }
                local = {k: local[k] - LR * LAM * (local[k] - theta[k]) for k in local}  # line 8
            sent.append(local)
            personal[i] = theta
        w = {k: (1 - BETA) * w[k] + BETA * np.mean([s[k] for s in sent], axis=0) for k in w}
        history.append(w)
    return history, personal


def ours() -> tuple[list[dict], list[dict]]:
    xs, ys, w0 = data()
    raw = {
        "scenario": {"name": "pfedme-paper", "rounds": ROUNDS},
        "data": {"dataset": "synth-commands", "num_clients": CLIENTS},
        "partition": {"kind": "iid"},
        "model": {"name": "kws-cnn"},
        "strategy": {"name": "pfedme", "lam": LAM, "beta": BETA, "min_train_nodes": 2},
    }
    scenario = scenario_from_dict(raw, "pfedme.toml")
    strategy = registry.STRATEGIES["pfedme"].load()(scenario.strategy, scenario)
    w = ArrayRecord({k: Array(v) for k, v in w0.items()})
    history, personal = [], [None] * CLIENTS
    for server_round in range(1, ROUNDS + 1):
        random.seed(server_round)
        grid = in_memory_grid(CLIENTS)
        messages = sorted(
            strategy.configure_train(server_round, w, ConfigRecord(), grid),
            key=lambda m: m.metadata.dst_node_id,
        )
        replies = []
        for i, message in enumerate(messages):
            model = torch.nn.Linear(DIM, CLASSES).double()
            model.load_state_dict(message.content["arrays"].to_torch_state_dict())
            batch = (torch.from_numpy(xs[i]), torch.from_numpy(ys[i]))
            theta = pfedme_steps(model, [batch] * R, BatchLoss(None), LAM, K, PERSONAL_LR, LR)
            personal[i] = {k: v.numpy() for k, v in theta.items()}
            arrays = {k: Array(v.detach().numpy()) for k, v in model.state_dict().items()}
            content = RecordDict(
                {
                    "arrays": ArrayRecord(arrays),
                    "metrics": MetricRecord({"num-examples": ROWS, "train_loss": 1.0}),
                }
            )
            replies.append(Message(content=content, reply_to=message))
        w, _ = strategy.aggregate_train(server_round, replies)
        history.append({k: w[k].numpy() for k in w0})
    return history, personal


def test_pfedme_matches_t_dinh_2020_algorithm_1():
    with flower_task():
        got, got_personal = ours()
    expected, expected_personal = paper()
    for mine, reference in zip(got + got_personal, expected + expected_personal, strict=True):
        for key in ("weight", "bias"):
            np.testing.assert_allclose(mine[key], reference[key], rtol=0, atol=1e-9, err_msg=key)


def test_bad_pfedme_settings_are_one_line(tmp_path, cli):
    from tiny_scenario import tiny_text

    path = tmp_path / "me.toml"
    path.write_text(tiny_text(tmp_path / "r", tmp_path / "c"))
    for setting, key in (("strategy.inner_steps=0", "inner_steps"), ("strategy.lam=-1", "lam")):
        done = cli("validate", str(path), "--set", "strategy.name=pfedme", "--set", setting)
        assert done.returncode == 2, setting
        (line,) = done.stderr.strip().splitlines()
        assert f"strategy.{key}" in line
