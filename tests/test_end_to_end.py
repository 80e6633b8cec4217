"""Real Flower/Ray simulations on tiny synthesized data, driven through the CLI.

One run goes through a fresh ``simfl`` process (the README's way); the second, the failing
run and the refusals go through the same CLI in this process, on the session's Ray runtime.
Both runs must give identical metrics: across processes, not just within one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_process import simfl
from tiny_scenario import TINY, tiny_text

from simfl.engine.records import TIMING_COLUMNS

__all__ = ["TINY"]  # other test modules import it from here

RESULT_FILES = (
    "scenario.toml",
    "metrics.parquet",
    "metrics.csv",
    "partition.parquet",
    "partition.csv",
    "partition_summary.json",
    "summary.json",
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_cache) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    (root / "tiny.toml").write_text(tiny_text(root / "results", tiny_cache))
    return root


def run_dirs(workspace: Path) -> list[Path]:
    results = workspace / "results"
    return sorted(results.iterdir()) if results.exists() else []


@pytest.fixture(scope="module")
def two_runs(workspace: Path, ray_runtime) -> list[Path]:
    """The same scenario through ``simfl run``: a fresh process, then this process."""
    from simfl.cli import invoke

    done = simfl("run", str(workspace / "tiny.toml"), cwd=workspace)
    assert done.returncode == 0, done.stdout + done.stderr
    assert invoke(["run", str(workspace / "tiny.toml")]) == 0
    dirs = run_dirs(workspace)
    assert len(dirs) == 2
    return dirs


@pytest.mark.ray
def test_run_writes_every_result_file(two_runs):
    for run_dir in two_runs:
        for name in RESULT_FILES:
            assert (run_dir / name).is_file(), name
        assert list((run_dir / "wandb").glob("offline-run-*")), "W&B offline run missing"


def test_metrics_and_summary_values(two_runs):
    run_dir = two_runs[0]
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(metrics["round"]) == [0, 1, 2]
    trained = metrics[metrics["round"] > 0]
    assert (trained["clients_sampled"] == 3).all()  # 0.75 of 4 clients
    assert (trained["clients_succeeded"] == 3).all() and (trained["clients_failed"] == 0).all()
    assert (trained["eval_clients_succeeded"] == 4).all()
    # It learns, deterministically: each trained global model beats chance (1/12) and the
    # initial model on the central test set (24 rows: by a row or a few) and on the clients'
    # own test rows (18); local training loss falls round to round.
    chance = 1 / 12
    assert trained["central_accuracy"].gt(chance).all()
    assert trained["central_accuracy"].gt(metrics["central_accuracy"].iloc[0]).all()
    assert trained["fed_accuracy_mean"].gt(chance).all()
    assert trained["train_loss"].diff().iloc[1:].lt(0).all()
    assert (trained["fed_accuracy_worst10"] <= trained["fed_accuracy_mean"]).all()
    model_bytes = trained["bytes_up"].iloc[0] / 3
    assert model_bytes > 10_000
    assert (trained["bytes_down"] == model_bytes * (3 + 4)).all()  # train + evaluate messages
    assert summary["status"] == "completed" and summary["rounds_completed"] == 2
    assert summary["final"]["central_accuracy"] == pytest.approx(
        metrics["central_accuracy"].iloc[-1]
    )
    assert summary["versions"]["flwr"].startswith("1.42")
    assert summary["chance_accuracy"] == pytest.approx(1 / 12)
    partition = pd.read_csv(run_dir / "partition.csv")
    assert len(partition) == 4 and partition["size"].min() >= 4


def test_clients_file_holds_each_evaluated_clients_metrics(two_runs):
    metrics = pd.read_parquet(two_runs[0] / "metrics.parquet").set_index("round")
    clients = pd.read_parquet(two_runs[0] / "clients.parquet")
    assert sorted(clients["round"].unique()) == [1, 2]
    assert sorted(clients[clients["round"] == 1]["partition_id"]) == [0, 1, 2, 3]
    weighted = clients.groupby("round").apply(  # federated means weigh clients by test examples
        lambda c: np.average(c["eval_accuracy"], weights=c["num-examples"]), include_groups=False
    )
    assert weighted.to_dict() == pytest.approx(metrics["fed_accuracy_mean"][1:].to_dict())
    per_round = clients.groupby("round")["eval_accuracy"]
    assert per_round.min().to_dict() == pytest.approx(metrics["fed_accuracy_worst10"][1:].to_dict())


def test_same_scenario_gives_identical_metrics(two_runs):
    first, second = (pd.read_parquet(d / "metrics.parquet") for d in two_runs)
    drop = [c for c in TIMING_COLUMNS if c in first]
    pd.testing.assert_frame_equal(first.drop(columns=drop), second.drop(columns=drop))


@pytest.mark.ray
def test_failing_clients_fail_the_run_loudly(workspace, two_runs, cli):
    done = cli(
        "run",
        str(workspace / "tiny.toml"),
        "--set",
        "faults.client_crash_probability=1.0",
        "--wandb",
        "disabled",
        cwd=workspace,
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "InjectedClientFault" in done.stderr
    assert "only 0 client(s) succeeded, 2 required" in done.stderr
    assert "ray::" not in done.stderr  # the client's own traceback, not Ray's wrapping
    assert "results (marked failed)" in done.stderr
    failed = [d for d in run_dirs(workspace) if d not in two_runs]
    assert len(failed) == 1
    summary = json.loads((failed[0] / "summary.json").read_text())
    assert summary["status"] == "failed" and "InjectedClientFault" in summary["error"]
    failures = json.loads((failed[0] / "failures.json").read_text())
    assert len(failures) == 3 and all(f["phase"] == "train" for f in failures)
    assert all("Traceback" in f["reason"] for f in failures)
    metrics = pd.read_parquet(failed[0] / "metrics.parquet")
    assert metrics.iloc[-1]["clients_failed"] == 3


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("fraction_train", "fraction_trian", "unknown key 'strategy.fraction_trian'"),
        ("rounds = 2", "rounds = -1", "key 'scenario.rounds'"),
        ('name = "fedavg"', 'name = "fedsgd"', "key 'strategy.name'"),
    ],
)
def test_bad_scenarios_exit_2_and_write_nothing(workspace, tmp_path, old, new, expected, cli):
    bad = tmp_path / "bad.toml"
    text = (workspace / "tiny.toml").read_text()
    bad.write_text(text.replace(old, new).replace(str(workspace / "results"), str(tmp_path / "r")))
    done = cli("run", str(bad), cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad.toml" in lines[0] and expected in lines[0], done.stderr
    assert not (tmp_path / "r").exists()


def test_validate_and_list(workspace, cli):
    done = cli("validate", str(workspace / "tiny.toml"), cwd=workspace)
    assert done.returncode == 0 and "valid; hash" in done.stdout
    listed = cli("list", cwd=workspace)
    assert listed.returncode == 0
    for name in ("synth-commands", "kws-cnn", "fedavg", "dirichlet", "mlflow"):
        assert name in listed.stdout
    assert "([privacy.he])" in listed.stdout  # summaries are text, not Rich markup
