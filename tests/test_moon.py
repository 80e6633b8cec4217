"""MOON against a direct transcription of Li, He & Song 2021 (CVPR), Eq. 3 and Algorithm 1.

Two clients with a tiny encoder and a projection head train two rounds of full-batch SGD on
CE + μ ℓ_con, each keeping its previous local model, and the server averages (FedAvg). Our side:
simfl's model change (:func:`with_projection`), its loss (:class:`MoonLoss`) inside simfl's real
``train_epochs``, and the registry's strategy on real Flower Messages. The reference writes the
network and Eq. 3 out with plain tensor operations (autograd only for the gradient). μ = 0 is
FedAvg's client step.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from flower_helpers import flower_task, in_memory_grid
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from torch import nn

from simfl import registry
from simfl.config import scenario_from_dict
from simfl.schema.sections import TrainConfig
from simfl.strategies.moon_model import MoonLoss, contrastive_loss, with_projection
from simfl.training import train_epochs

DIM, HIDDEN, PROJ, CLASSES, ROWS, LR, MU, TAU, EPOCHS = 4, 3, 5, 2, 6, 0.1, 2.0, 0.5, 3


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(DIM, HIDDEN)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.encoder(x)))


def test_contrastive_loss_is_eq_3():
    rng = np.random.default_rng(0)
    z, g, p = (rng.normal(size=(4, 3)) for _ in range(3))

    def cos(a, b):
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    pos, neg = np.exp(cos(z, g) / TAU), np.exp(cos(z, p) / TAU)
    expected = np.mean(-np.log(pos / (pos + neg)))
    got = contrastive_loss(*(torch.from_numpy(a) for a in (z, g, p)), TAU)
    assert abs(float(got) - expected) < 1e-12


def reference_step(state, global_state, previous_state, x, y, mu):
    """EPOCHS full-batch SGD steps on CE + μ ℓ_con, the network written out."""
    p = {k: v.clone().requires_grad_(True) for k, v in state.items()}

    def forward(w, inputs):
        h = torch.relu(inputs @ w["encoder.weight"].T + w["encoder.bias"])
        a = torch.relu(h @ w["head.projection.0.weight"].T + w["head.projection.0.bias"])
        z = a @ w["head.projection.2.weight"].T + w["head.projection.2.bias"]
        return z @ w["head.output.weight"].T + w["head.output.bias"], z

    for _ in range(EPOCHS):
        logits, z = forward(p, x)
        loss = nn.functional.cross_entropy(logits, y)
        z_glob, z_prev = forward(global_state, x)[1], forward(previous_state, x)[1]
        sim_g = (z * z_glob).sum(1) / z.norm(dim=1) / z_glob.norm(dim=1) / TAU
        sim_p = (z * z_prev).sum(1) / z.norm(dim=1) / z_prev.norm(dim=1) / TAU
        loss = loss + mu * (-torch.log(sim_g.exp() / (sim_g.exp() + sim_p.exp()))).mean()
        grads = torch.autograd.grad(loss, list(p.values()))
        p = {
            k: (v - LR * g).detach().requires_grad_(True)
            for (k, v), g in zip(p.items(), grads, strict=True)
        }
    return {k: v.detach() for k, v in p.items()}


def build():
    raw = {
        "scenario": {"name": "moon-paper", "rounds": 2},
        "data": {"dataset": "synth-commands", "num_clients": 2},
        "partition": {"kind": "iid"},
        "model": {"name": "kws-cnn"},
        "strategy": {"name": "moon", "mu": MU, "temperature": TAU, "min_train_nodes": 2},
    }
    scenario = scenario_from_dict(raw, "moon.toml")
    return registry.STRATEGIES["moon"].load()(scenario.strategy, scenario)


@pytest.mark.parametrize("mu", [MU, 0.0])
def test_moon_matches_li_2021(mu):
    torch.manual_seed(0)
    model = with_projection(Tiny(), PROJ).double()
    rng = np.random.default_rng(1)
    data = [
        (
            torch.from_numpy(rng.normal(size=(ROWS, DIM))),
            torch.from_numpy(rng.integers(0, CLASSES, ROWS)),
        )
        for _ in range(2)
    ]
    config = TrainConfig(local_epochs=EPOCHS, batch_size=ROWS, lr=LR)
    strategy = build()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    w = ArrayRecord({k: Array(v.numpy()) for k, v in start.items()})
    reference, previous, mine_previous = start, [start, start], [start, start]
    with flower_task():
        for server_round in (1, 2):
            random.seed(server_round)
            messages = sorted(
                strategy.configure_train(server_round, w, ConfigRecord(), in_memory_grid(2)),
                key=lambda m: m.metadata.dst_node_id,
            )
            replies, expected = [], []
            for i, message in enumerate(messages):
                received = message.content["arrays"].to_torch_state_dict()
                model.load_state_dict(received)
                twins = []
                for state in (received, mine_previous[i]):
                    twin = with_projection(Tiny(), PROJ).double()
                    twin.load_state_dict(state)
                    twins.append(twin.requires_grad_(False))
                loss = MoonLoss(twins[0], twins[1], mu, TAU)
                train_epochs(model, *data[i], config, seed=server_round, task=loss)
                trained = {k: v.detach().clone() for k, v in model.state_dict().items()}
                mine_previous[i] = trained
                expected.append(reference_step(reference, reference, previous[i], *data[i], mu))
                previous[i] = expected[-1]
                content = RecordDict(
                    {
                        "arrays": ArrayRecord({k: Array(v.numpy()) for k, v in trained.items()}),
                        "metrics": MetricRecord({"num-examples": ROWS, "train_loss": 1.0}),
                    }
                )
                replies.append(Message(content=content, reply_to=message))
                for key, value in trained.items():
                    np.testing.assert_allclose(value.numpy(), expected[-1][key].numpy(), atol=1e-10)
            w, _ = strategy.aggregate_train(server_round, replies)
            reference = {k: (expected[0][k] + expected[1][k]) / 2 for k in start}
            for key in start:
                np.testing.assert_allclose(w[key].numpy(), reference[key].numpy(), atol=1e-10)


@pytest.mark.parametrize(
    ("strategy", "setting", "key"),
    [
        ("moon", "strategy.temperature=0", "strategy.temperature"),
        ("moon", "strategy.mu=-1", "strategy.mu"),
        ("ditto", "strategy.lam=-0.5", "strategy.lam"),
        ("scaffold", "strategy.server_learning_rate=0", "strategy.server_learning_rate"),
    ],
)
def test_bad_hyperparameters_are_one_line(tmp_path, cli, strategy, setting, key):
    from tiny_scenario import tiny_text

    path = tmp_path / "bad.toml"
    path.write_text(tiny_text(tmp_path / "r", tmp_path / "c"))
    done = cli("validate", str(path), "--set", f"strategy.name={strategy}", "--set", setting)
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: bad.toml: key '{key}'")


def test_the_whisper_kws_head_gets_a_projection_head_too():
    from simfl.models.whisper_kws import build_whisper_kws
    from simfl.schema.model import WhisperKwsParams
    from simfl.strategies.moon_model import representation

    torch.manual_seed(0)
    params = WhisperKwsParams(name="whisper-kws", config_preset="test-small", input_frames=100)
    model = with_projection(build_whisper_kws(params, 12), 16)
    names = {name for name, _ in model.named_parameters() if name.startswith("head.")}
    assert {"head.linear.projection.0.weight", "head.linear.output.weight"} <= names
    logits, z = representation(model, torch.randn(3, 80, 100))
    assert logits.shape == (3, 12) and z.shape == (3, 16)
