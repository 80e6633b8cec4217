"""Robust aggregation (Yin 2018, Blanchard 2017, El Mhamdi 2018) and q-FFL (Li 2020), our
configured strategies against independent NumPy versions of the papers' rules (see
test_strategies_paper.py for how)."""

from __future__ import annotations

import numpy as np
import pytest
from flower_helpers import flower_task
from test_strategies_paper import (
    BASE,
    SHAPES,
    Weights,
    assert_close,
    build,
    client_results,
    random_weights,
    rounds,
    run_round,
    weighted_mean,
)

from simfl.config import scenario_from_dict

pytestmark = pytest.mark.usefixtures("frozen_gc")  # Flower collects per reply


@pytest.fixture(autouse=True)
def _task():
    with flower_task():
        yield


# ----------------------------------------------------------------------- Yin et al. 2018


def coordinate_median(clients: list[Weights]) -> Weights:
    out = {}
    for k in SHAPES:
        stacked = np.sort(np.stack([c[k] for c in clients]), axis=0)
        n = len(clients)
        middle = stacked[n // 2] if n % 2 else (stacked[n // 2 - 1] + stacked[n // 2]) / 2
        out[k] = middle
    return out


def trimmed_mean(clients: list[Weights], beta: float) -> Weights:
    """Drop the floor(beta n) largest and smallest values of every coordinate, average the rest."""
    cut = int(np.floor(beta * len(clients)))
    return {
        k: np.sort(np.stack([c[k] for c in clients]), axis=0)[cut : len(clients) - cut].mean(0)
        for k in SHAPES
    }


def test_fedmedian_matches_yin_2018():
    strategy = build({"name": "fedmedian"})
    rounds(strategy, lambda t, w, c, s: coordinate_median(c), sizes=[5, 1, 9, 2, 7])


def test_fedtrimmedavg_matches_yin_2018():
    strategy = build({"name": "fedtrimmedavg", "beta": 0.2})
    rounds(strategy, lambda t, w, c, s: trimmed_mean(c, 0.2), sizes=[5, 1, 9, 2, 7])


# ----------------------------------------------------------------------- Blanchard et al. 2017


def krum_scores(clients: list[Weights], f: int) -> list[float]:
    """score(i) = sum of squared distances to its n - f - 2 nearest others (at least one, as
    Flower: a recursive selection's last pools are smaller than f + 3)."""
    flat = [np.concatenate([c[k].ravel() for k in SHAPES]) for c in clients]
    n = len(flat)
    scores = []
    for i in range(n):
        dists = sorted(float(np.sum((flat[i] - flat[j]) ** 2)) for j in range(n) if j != i)
        scores.append(sum(dists[: max(1, n - f - 2)]))
    return scores


def krum(clients: list[Weights], f: int) -> Weights:
    """Keep the model with the lowest Krum score."""
    return clients[int(np.argmin(krum_scores(clients, f)))]


def test_krum_matches_blanchard_2017_and_rejects_the_outlier():
    strategy = build({"name": "krum", "num_malicious_nodes": 1})
    rng = np.random.default_rng(1)
    global_w = random_weights(rng)
    clients = client_results(rng, global_w)
    got = run_round(strategy, 1, global_w, clients, sizes=[5, 1, 9, 2, 7])
    assert_close(got, krum(clients, f=1))
    assert not np.allclose(got["conv.bias"], clients[-1]["conv.bias"])


def best_by_krum(clients: list[Weights], f: int, m: int) -> list[int]:
    return [int(i) for i in np.argsort(krum_scores(clients, f))[:m]]


def test_multikrum_uniform_matches_blanchard_2017():
    """Multi-Krum: the unweighted mean of the m models with the best Krum scores."""

    def reference(t, w, clients, sizes):
        best = best_by_krum(clients, f=1, m=2)
        return {k: np.mean([clients[i][k] for i in best], axis=0) for k in SHAPES}

    strategy = build(
        {"name": "multikrum", "num_malicious_nodes": 1, "num_nodes_to_select": 2}
        | {"weighting": "uniform"}
    )
    rounds(strategy, reference, sizes=[5, 1, 9, 2, 7])


def test_multikrum_default_weights_the_selected_models_by_examples():
    """Flower's MultiKrum (our default) departs from the paper: n_k-weighted mean."""

    def reference(t, w, clients, sizes):
        best = best_by_krum(clients, f=1, m=2)
        return weighted_mean([clients[i] for i in best], [sizes[i] for i in best])

    strategy = build({"name": "multikrum", "num_malicious_nodes": 1, "num_nodes_to_select": 2})
    rounds(strategy, reference, sizes=[5, 1, 9, 2, 7])


# ----------------------------------------------------------------------- El Mhamdi et al. 2018

BULYAN_SIZES = [5, 1, 9, 2, 7, 3, 4]  # n = 7 = 4f + 3 with f = 1: theta = 5, beta = 3
BULYAN_SEED = 1  # the two selections keep different models here (checked below)


def bulyan(clients: list[Weights], f: int, recursive: bool) -> Weights:
    """Select theta = n - 2f models by Krum (recursively: pick, remove, rescore the rest; or
    the theta best scores of one pass); per coordinate, average the beta = theta - 2f selected
    values closest to their median."""
    theta = len(clients) - 2 * f
    if recursive:
        pool, chosen = list(range(len(clients))), []
        for _ in range(theta):
            chosen.append(pool.pop(int(np.argmin(krum_scores([clients[i] for i in pool], f)))))
    else:
        chosen = best_by_krum(clients, f, theta)
    out = {}
    for k in SHAPES:
        stacked = np.stack([clients[i][k] for i in chosen])
        nearest = np.argsort(np.abs(stacked - np.median(stacked, axis=0)), axis=0)[: theta - 2 * f]
        out[k] = np.take_along_axis(stacked, nearest, axis=0).mean(axis=0)
    return out


@pytest.mark.parametrize(
    ("selection", "recursive"), [("multikrum", False), ("recursive_krum", True)]
)
def test_bulyan_matches_el_mhamdi_2018(selection, recursive):
    strategy = build({"name": "bulyan", "num_malicious_nodes": 1, "selection": selection}, 7)
    reference = lambda t, w, c, s: bulyan(c, f=1, recursive=recursive)  # noqa: E731
    rounds(strategy, reference, sizes=BULYAN_SIZES, num_rounds=3, seed=BULYAN_SEED)


def test_bulyan_selections_differ_on_the_test_data():
    """Guard: the test above could not tell the two selections apart if they agreed."""
    rng = np.random.default_rng(BULYAN_SEED)
    clients = client_results(rng, random_weights(rng), len(BULYAN_SIZES))
    one_pass, recursive = bulyan(clients, 1, False), bulyan(clients, 1, True)
    assert not all(np.allclose(one_pass[k], recursive[k]) for k in SHAPES)


# ----------------------------------------------------------------------- Li et al. 2020 (q-FFL)


def q_ffl(global_w: Weights, clients: list[Weights], losses: list[float], q: float, lr: float):
    """q-FedAvg: L = 1/lr; Delta_k = F_k^q L (w - w_k); h_k = q F_k^(q-1) ||L (w - w_k)||^2
    + L F_k^q; w' = w - sum Delta_k / sum h_k, F_k the loss of w on client k."""
    big_l = 1.0 / lr
    deltas, hs = [], []
    for weights, loss in zip(clients, losses, strict=True):
        dw = {k: big_l * (global_w[k] - weights[k]) for k in SHAPES}
        norm = sum(float(np.sum(d**2)) for d in dw.values())
        deltas.append({k: loss**q * dw[k] for k in SHAPES})
        hs.append(q * loss ** (q - 1) * norm + big_l * loss**q)
    return {k: global_w[k] - sum(d[k] for d in deltas) / sum(hs) for k in SHAPES}


@pytest.mark.parametrize("q", [0.0, 0.5, 2.0])
def test_qfedavg_matches_li_2020(q):
    strategy = build({"name": "qfedavg", "q": q})  # client_learning_rate defaults to train.lr
    rng = np.random.default_rng(2)
    global_w = random_weights(rng)
    clients = client_results(rng, global_w)[:-1] + [random_weights(rng, 0.5)]
    losses = [0.4, 1.3, 2.2, 0.9, 3.1]
    got = run_round(strategy, 1, global_w, clients, [5, 1, 9, 2, 7], losses)
    assert_close(got, q_ffl(global_w, clients, losses, q, lr=0.05))


def test_qfedavg_asks_clients_for_the_loss_of_the_global_model():
    scenario = scenario_from_dict({**BASE, "strategy": {"name": "qfedavg"}})
    assert scenario.strategy.client_train_config() == {"loss-at-global": True}
