"""Privacy through the CLI on real Flower/Ray simulations of the tiny scenario."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_end_to_end import TINY, run_dirs

from simfl.privacy.accounting import central_event, epsilon_of
from simfl.privacy.audit import attack_scores

PRIVATE_TINY = TINY.replace("rounds = 2", "rounds = 3")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_cache):
    root = tmp_path_factory.mktemp("privacy")
    text = PRIVATE_TINY.format(results=root / "results", cache=tiny_cache)
    (root / "tiny.toml").write_text(text)
    return root


@pytest.fixture
def run(workspace, cli, ray_runtime):
    """``run(*overrides)``: the tiny private scenario through the CLI, in this process."""
    return lambda *overrides: _run(cli, workspace, *overrides)


def _run(cli, workspace, *overrides):
    before = set(run_dirs(workspace))
    args = [arg for item in overrides for arg in ("--set", item)]
    done = cli("run", str(workspace / "tiny.toml"), "--wandb", "disabled", *args, cwd=workspace)
    assert done.returncode == 0, done.stdout + done.stderr
    (new,) = set(run_dirs(workspace)) - before
    return (
        pd.read_parquet(new / "metrics.parquet"),
        json.loads((new / "summary.json").read_text()),
        done.stdout,
    )


@pytest.mark.ray
def test_central_dp_accounts_audits_and_stops_at_the_budget(run):
    method = "sampled-without-replacement"
    two_rounds = epsilon_of([central_event(2.0, 4, 3, method)] * 2, method, 1e-5)
    metrics, summary, stdout = run(
        "privacy.mode=central",
        "privacy.noise_multiplier=2.0",
        "privacy.clipping_norm=0.5",
        f"privacy.max_epsilon={two_rounds * 1.0001}",
        "privacy.audit.attack=loss-threshold",
        "strategy.min_train_nodes=3",
    )
    trained = metrics[metrics["round"] > 0]
    assert list(trained["dp_noise_std"]) == pytest.approx([2.0 * 0.5 / 3] * 2)
    assert list(trained["dp_effective_noise_multiplier"]) == pytest.approx([2.0] * 2)
    assert list(metrics["epsilon"]) == sorted(metrics["epsilon"]) and metrics["epsilon"][0] == 0
    assert summary["status"] == "completed"
    assert summary["stopped"] and "privacy.max_epsilon" in summary["stopped"]
    assert summary["final"]["epsilon"] == pytest.approx(two_rounds, rel=1e-6)
    assert "fixed-size cohort of 3 of 4" in summary["privacy"]["sampling"]
    assert 0 <= summary["final"]["mia_auc"] <= 1 and summary["final"]["mia_members"] > 0
    assert "epsilon" in stdout


@pytest.mark.ray
def test_local_dpsgd_on_batch_norm_model_with_fix(run):
    metrics, summary, _ = run(
        "privacy.mode=local-dpsgd",
        "privacy.noise_multiplier=1.0",
        "model.batch_norm=true",
        "privacy.fix_batch_norm=true",
        "scenario.rounds=2",
    )
    last = metrics.iloc[-1]
    assert last["epsilon_client_max"] >= last["epsilon_client_mean"] > 0
    assert metrics["epsilon_client_max"].is_monotonic_increasing
    assert summary["privacy"]["accountant"] == "opacus RDPAccountant, per client"


@pytest.mark.ray
def test_local_output_dp_with_flowers_local_dp_mod(run):
    metrics, summary, _ = run(
        "privacy.mode=local-output", "privacy.local_epsilon=2.0", "scenario.rounds=2"
    )
    assert metrics.iloc[-1]["epsilon_client_max"] > 2.0  # composed over two releases
    assert summary["status"] == "completed"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("privacy.noise_multiplier=-0.5", "key 'privacy.noise_multiplier'"),
        ("privacy.delta=1.0", "key 'privacy.delta'"),
        ("privacy.delta=0", "key 'privacy.delta'"),
        ("privacy.secagg.reconstruction_threshold=4", "privacy.secagg.reconstruction_threshold"),
        ("model.batch_norm=true", "model.batch_norm"),
    ],
)
def test_bad_privacy_input_exits_2_naming_the_key(workspace, tmp_path, override, expected, cli):
    text = (workspace / "tiny.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(str(workspace / "results"), str(tmp_path / "r")))
    extra = {
        "privacy.secagg.reconstruction_threshold=4": [
            "privacy.secagg.enabled=true",
            "privacy.secagg.num_shares=4",
        ],
        "model.batch_norm=true": ["privacy.mode=local-dpsgd"],
    }.get(override, [])
    args = [arg for item in [override, *extra] for arg in ("--set", item)]
    done = cli("run", str(bad), *args, cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad.toml" in lines[0] and expected in lines[0], done.stderr
    assert not (tmp_path / "r").exists()


def test_attack_scores_exact():
    members = np.array([0.9, 0.8, 0.7, 0.2])
    non_members = np.array([0.6, 0.5, 0.1, 0.05])
    result = attack_scores(members, non_members)
    assert result.auc == pytest.approx(14 / 16)  # 3 members beat all 4, one beats 2
    # The 99% quantile of non-members is 0.6: members above it at 1% FPR are 3 of 4.
    assert result.tpr_at_1pct_fpr == pytest.approx(0.75)
