"""SCAFFOLD (Karimireddy et al. 2020, Algorithm 1, option II) in plain PyTorch, on a scenario's
own clients, beside FedAvg: does SCAFFOLD learn at these step sizes, independently of simfl's
Flower strategy, client mod and gradient hooks?

Usage: python bench/scaffold_reference.py SCENARIO [--set KEY=VALUE ...] [--rounds 20]

Reads the scenario's prepared data (the same clients, rows and central test set as ``simfl
run``) and its initial model, then runs both algorithms in one loop of its own: per round a
uniform sample of ``fraction_train`` of the clients (NumPy, seed 0), the scenario's local
epochs, batch size, learning rate and momentum (torch's SGD), the correction c - c_i added to
every minibatch gradient (line 10), c_i+ from option II (line 12; with momentum ρ, K is the
local work Σ_k (1 - ρ^k)/(1 - ρ), as simfl's client does), and lines 16-17 with η_g = 1. It
prints the central accuracy and ‖c‖ after each round. Sampling and shuffling are this script's
own, so its numbers match ``simfl run``'s in kind, not digit for digit.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from torch import nn

from simfl.config import load_scenario
from simfl.data.client_index import ClientIndex
from simfl.data.feature_store import FeatureStore
from simfl.engine.plan import RunPlan
from simfl.pipeline import prepare_run

Tensors = dict[str, torch.Tensor]


def load(path: str, overrides: list[str]):
    """The scenario, its model, every client's training tensors and the central test set."""
    scenario = load_scenario(path, overrides)
    run = prepare_run(scenario)
    plan = RunPlan(
        scenario,
        run.federation.train_store,
        run.data.test.store_dir,
        run.federation.index_dir,
        run.data.num_classes,
    )
    index, store = ClientIndex(run.federation.index_dir), FeatureStore.open(plan.train_store)
    clients = []
    for cid in range(index.num_clients):
        split = index.client(cid)
        features = torch.from_numpy(store.read(split.train_rows))
        clients.append((features, torch.from_numpy(split.train_labels.astype("int64"))))
    test = FeatureStore.open(plan.test_store)
    test_set = (
        torch.from_numpy(test.read(run.data.test.rows)),
        torch.from_numpy(np.asarray(run.data.test.labels).astype("int64")),
    )
    return scenario, plan.initial_model(), clients, test_set


def local_work(steps: int, momentum: float) -> float:
    return float(sum((1 - momentum**k) / (1 - momentum) for k in range(1, steps + 1)))


def client_round(model, x: Tensors, data, correction: Tensors | None, train, seed: int):
    """The client's local epochs from x; its model y and the local work ‖a‖₁."""
    local = copy.deepcopy(model)
    local.load_state_dict(x, strict=False)
    local.train()
    optimizer = torch.optim.SGD(local.parameters(), lr=train.lr, momentum=train.momentum)
    features, labels = data
    generator, steps = torch.Generator().manual_seed(seed), 0
    for _ in range(train.local_epochs):
        for batch in torch.randperm(len(labels), generator=generator).split(train.batch_size):
            optimizer.zero_grad()
            nn.functional.cross_entropy(local(features[batch]), labels[batch]).backward()
            if correction is not None:  # line 10: g(y) - c_i + c
                for name, parameter in local.named_parameters():
                    parameter.grad += correction[name]
            optimizer.step()
            steps += 1
    y = {name: p.detach().clone() for name, p in local.named_parameters()}
    return y, local_work(steps, train.momentum)


def accuracy(model, x: Tensors, test_set) -> float:
    evaluated = copy.deepcopy(model)
    evaluated.load_state_dict(x, strict=False)
    evaluated.eval()
    with torch.no_grad():
        return float((evaluated(test_set[0]).argmax(1) == test_set[1]).float().mean())


def run(algorithm: str, scenario, model, clients, test_set, rounds: int) -> list[float]:
    """FedAvg, or SCAFFOLD with option II: the central accuracy after every round."""
    train, population = scenario.train, len(clients)
    x = {name: p.detach().clone() for name, p in model.named_parameters()}
    zeros = lambda: {name: torch.zeros_like(value) for name, value in x.items()}  # noqa: E731
    c, c_i = zeros(), [zeros() for _ in range(population)]
    rng, history = np.random.default_rng(0), []
    sampled = max(1, int(scenario.strategy.fraction_train * population))
    for server_round in range(rounds):
        steps, deltas = [], []
        for cid in rng.choice(population, sampled, replace=False):
            correction = {n: c[n] - c_i[cid][n] for n in x} if algorithm == "scaffold" else None
            y, work = client_round(model, x, clients[cid], correction, train, server_round)
            steps.append({n: y[n] - x[n] for n in x})
            if algorithm == "scaffold":
                c_plus = {n: c_i[cid][n] - c[n] + (x[n] - y[n]) / (work * train.lr) for n in x}
                deltas.append({n: c_plus[n] - c_i[cid][n] for n in x})
                c_i[cid] = c_plus
        x = {n: x[n] + sum(step[n] for step in steps) / len(steps) for n in x}
        c = {n: c[n] + sum(delta[n] for delta in deltas) / population for n in x}
        norm = float(torch.sqrt(sum((value**2).sum() for value in c.values())))
        history.append(accuracy(model, x, test_set))
        print(f"{algorithm} round {server_round + 1}: accuracy {history[-1]:.3f}  |c| {norm:.3g}")
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    scenario, model, clients, test_set = load(args.scenario, args.overrides)
    for algorithm in ("fedavg", "scaffold"):
        run(algorithm, scenario, model, clients, test_set, args.rounds)


if __name__ == "__main__":
    main()
