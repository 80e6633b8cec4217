"""Ditto's personal step against Li et al. 2021 (ICML), Algorithm 1, line 8, in NumPy.

A softmax-regression client (tiny tensors, one full batch) takes three rounds of the personal
update v ← v − η(∇F(v) + λ(v − w^t)) with a different received global model w^t each round; our
side is :func:`personal_step`, simfl's real local training (``train_epochs``) with the proximal
anchor. λ = 0 is local training alone. The whole strategy (global FedAvg, personal models as
client state, their evaluation as ``pers_accuracy``) runs end to end and resumes in
``tests/test_resume_features.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simfl.schema.sections import TrainConfig
from simfl.strategies.ditto import personal_step

DIM, CLASSES, ROWS, LR, EPOCHS = 5, 3, 12, 0.1, 4


def data(seed: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, DIM)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=ROWS)
    globals_ = [
        {"weight": rng.normal(size=(CLASSES, DIM)), "bias": rng.normal(size=CLASSES)}
        for _ in range(3)
    ]
    return x, y, globals_


def numpy_line_8(v, w, x, y, lam):
    """EPOCHS full-batch steps of ∇F(v) + λ(v − w), F the mean cross-entropy."""
    weight, bias = v["weight"].copy(), v["bias"].copy()
    onehot = np.eye(CLASSES)[y]
    for _ in range(EPOCHS):
        logits = x @ weight.T + bias
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g_logits = (p - onehot) / ROWS
        weight = weight - LR * (g_logits.T @ x + lam * (weight - w["weight"]))
        bias = bias - LR * (g_logits.sum(axis=0) + lam * (bias - w["bias"]))
    return {"weight": weight, "bias": bias}


def ours(lam: float):
    x, y, globals_ = data()
    model = torch.nn.Linear(DIM, CLASSES).double()
    v = {k: t.detach().clone() for k, t in model.state_dict().items()}
    v0 = {k: t.numpy().copy() for k, t in v.items()}
    config = TrainConfig(local_epochs=EPOCHS, batch_size=ROWS, lr=LR)
    history = []
    for t, w in enumerate(globals_):
        model.load_state_dict(v)
        anchor = {k: torch.from_numpy(a) for k, a in w.items()}
        features, labels = torch.from_numpy(x).double(), torch.from_numpy(y)
        personal_step(model, features, labels, config, seed=t, lam=lam, global_model=anchor)
        v = {k: p.detach().clone() for k, p in model.state_dict().items()}
        history.append({k: p.numpy() for k, p in v.items()})
    return v0, history


@pytest.mark.parametrize("lam", [0.5, 0.0])
def test_ditto_personal_step_matches_li_2021_line_8(lam):
    x, y, globals_ = data()
    v0, got = ours(lam)
    v = v0
    for mine, w in zip(got, globals_, strict=True):
        v = numpy_line_8(v, w, x.astype(np.float64), y, lam)
        for key in ("weight", "bias"):
            np.testing.assert_allclose(mine[key], v[key], rtol=0, atol=1e-9, err_msg=key)


def test_ditto_with_lambda_zero_ignores_the_global_model():
    _, with_globals = ours(0.0)
    x, y, _ = data()
    v0, _ = ours(0.0)
    v = v0
    for mine in with_globals:  # the same steps as training alone, whatever w^t was
        v = numpy_line_8(v, v, x.astype(np.float64), y, 0.0)
        np.testing.assert_allclose(mine["weight"], v["weight"], rtol=0, atol=1e-9)
