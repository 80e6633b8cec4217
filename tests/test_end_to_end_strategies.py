"""Three strategies end to end (real Flower/Ray, the session's runtime and actor pools) on the
tiny scenario: central, federated and personalized evaluation all land in the metrics and the
summary."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_scenario import tiny_raw

from simfl.config import apply_override, scenario_from_dict
from simfl.run import RunOptions, run_scenario

RUNS = {
    "fedprox": ['strategy.name="fedprox"', "strategy.proximal_mu=0.1"],
    "fedbn": ['strategy.name="fedbn"', "model.batch_norm=true"],
    "krum": [
        'strategy.name="krum"',
        "strategy.num_malicious_nodes=0",
        "strategy.min_train_nodes=3",
    ],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_cache, ray_runtime) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("e2e-strategies")
    dirs = {}
    for name, overrides in RUNS.items():
        raw = tiny_raw(root / "results", tiny_cache)
        for item in overrides:
            apply_override(raw, item, "tiny.toml")
        scenario = scenario_from_dict(raw, "tiny.toml")
        outcome = run_scenario(scenario, RunOptions(wandb_mode="disabled", session=ray_runtime))
        dirs[name] = outcome.run_dir
    assert not any((tiny_cache / "client-state").iterdir())  # per-run state is removed
    return dirs


def example_weighted(clients: pd.DataFrame, column: str) -> pd.Series:
    """Per round, the clients' ``column`` weighted by their test examples (a federated mean)."""
    return clients.groupby("round").apply(
        lambda c: np.average(c[column], weights=c["num-examples"]), include_groups=False
    )


@pytest.mark.ray
@pytest.mark.parametrize("name", list(RUNS))
def test_each_strategy_reports_three_evaluations(runs, name):
    metrics = pd.read_parquet(runs[name] / "metrics.parquet")
    summary = json.loads((runs[name] / "summary.json").read_text())
    trained = metrics[metrics["round"] > 0]
    resolved = tomllib.loads((runs[name] / "scenario.toml").read_text())
    assert summary["status"] == "completed" and resolved["strategy"]["name"] == name
    for column in ("central_accuracy", "fed_accuracy_mean", "pers_accuracy_mean"):
        assert trained[column].notna().all(), column
    clients = pd.read_parquet(runs[name] / "clients.parquet")
    for prefix, column in (("fed", "eval_accuracy"), ("pers", "pers_accuracy")):
        weighted = example_weighted(clients, column)  # FedBN's two differ, the others' agree
        assert weighted.tolist() == pytest.approx(trained[f"{prefix}_accuracy_mean"].tolist())
    # Every strategy learns: its global model beats chance (1/12) on the clients' 18 test rows
    # (by a row or a few) and local training loss falls from round 1 to round 2.
    assert trained["fed_accuracy_mean"].gt(1 / 12).all()
    assert trained["train_loss"].diff().iloc[1:].lt(0).all()
    assert (trained["pers_accuracy_worst10"] <= trained["pers_accuracy_mean"]).all()
    assert summary["final"]["pers_accuracy_mean"] == pytest.approx(
        trained["pers_accuracy_mean"].iloc[-1]
    )


@pytest.mark.ray
def test_only_fedbn_personalizes(runs):
    last = {name: pd.read_parquet(d / "metrics.parquet").iloc[-1] for name, d in runs.items()}
    for name in ("fedprox", "krum"):  # no local part: personalized model = global model
        assert last[name]["pers_accuracy_mean"] == last[name]["fed_accuracy_mean"]
    assert not np.isclose(last["fedbn"]["pers_loss_mean"], last["fedbn"]["fed_loss_mean"])
