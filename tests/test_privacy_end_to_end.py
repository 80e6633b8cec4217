"""Privacy through the CLI on real Flower/Ray simulations of the tiny scenario."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_end_to_end import TINY, run_dirs

from simfl.config import load_scenario
from simfl.data.prepare import prepare_data
from simfl.privacy.accounting import central_event, epsilon_of
from simfl.privacy.audit import attack_scores, loss_scores

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
def test_central_dp_accounts_audits_and_stops_at_the_budget(run, workspace, tiny_cache):
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
    # The audit scores as many members as non-members: the whole central test set, smaller
    # than the training clips of the clients that trained.
    final = summary["final"]
    test_clips = len(
        prepare_data(load_scenario(workspace / "tiny.toml").data, tiny_cache).test.rows
    )
    assert final["mia_members"] == final["mia_non_members"] == test_clips == 24
    # The noise wrecks the model (central loss above twice ln 12 = 2.48, a uniform guess's),
    # so its losses carry no membership signal: the AUC is within 0.25 of a coin's, about 3
    # standard deviations of the AUC of 24 against 24 random scores.
    assert metrics["central_loss"].iloc[-1] > 2 * np.log(12)
    assert abs(final["mia_auc"] - 0.5) <= 0.25
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


def test_nan_losses_score_worst_so_a_wrecked_model_ties():
    nan = np.full(4, np.nan)
    assert attack_scores(loss_scores(nan), loss_scores(nan)).auc == 0.5
    # One member with a finite loss beats the 4 NaN non-members: (4 + 3 * 4 * 0.5) / 16.
    members = loss_scores(np.array([1.0, np.nan, np.nan, np.nan]))
    result = attack_scores(members, loss_scores(nan))
    assert result.auc == pytest.approx(10 / 16) and result.tpr_at_1pct_fpr == 0.25


@pytest.mark.ray
@pytest.mark.parametrize(("initial_norm", "clipped"), [(1e-4, 3), (1e3, 0)])
def test_client_side_adaptive_clipping_moves_the_norm_toward_the_target(
    tmp_path, tiny_cache, ray_runtime, initial_norm, clipped
):
    """Flower's client-side adaptive wrapper and ``adaptiveclipping_mod`` (train handler only),
    in process on the session's Ray runtime. Round 1's updates all exceed 1e-4 (every client
    clips) and are all far below 1e3 (none does): Andrew et al.'s rule then moves the norm by
    exactly exp(lr * (noisy clipped fraction - target)), with the noisy count drawn from the
    round's seeded generator. Epsilon is accounted from the releases really made."""
    from tiny_scenario import tiny_scenario

    from simfl.flower_compat.dp import seeded_numpy_global
    from simfl.run import RunOptions, run_scenario
    from simfl.seeding import derive_seed

    z, lr, target, cohort = 0.2, 0.2, 0.5, 3
    privacy = {
        "mode": "central",
        "clipping": "adaptive",
        "clipping_side": "client",
        "noise_multiplier": z,
        "clipping_norm": initial_norm,
        "clip_norm_lr": lr,
        "target_clipped_quantile": target,
    }
    scenario = tiny_scenario(
        tmp_path / "results",
        tiny_cache,
        scenario={"rounds": 2},
        strategy={"min_train_nodes": cohort},
        privacy=privacy,
    )
    outcome = run_scenario(scenario, RunOptions(wandb_mode="disabled", session=ray_runtime))
    assert outcome.summary["status"] == "completed"
    rounds = [r for r in outcome.history.rounds if r.round > 0]
    assert [r.clients_succeeded for r in rounds] == [cohort, cohort]
    norms = [r.metrics["dp_clipping_norm"] for r in rounds]
    assert norms[0] == initial_norm
    with seeded_numpy_global(derive_seed(scenario.scenario.seed, "dp-noise", 1)):
        noisy_fraction = np.random.normal(clipped, cohort / 20) / cohort  # Flower's draw
    assert norms[1] == pytest.approx(
        initial_norm * np.exp(lr * (noisy_fraction - target)), rel=1e-12
    )
    assert (norms[1] > initial_norm) == (clipped == cohort)  # clipped: grow; none: shrink
    # Epsilon from the effective noise multipliers, recomputed from the recorded norms.
    count_std = cohort / 20
    z_update = (z**-2 - (2 * count_std) ** -2) ** -0.5  # Flower's share of z for the update
    method = "sampled-without-replacement"
    events = []
    for r in rounds:
        # The noise is scaled by the norm *after* the update; one client's share of the
        # (uniformly weighted) mean is clipping_norm / cohort.
        sensitivity = r.metrics["dp_clipping_norm"] / cohort
        effective = (r.metrics["dp_noise_std"] / sensitivity) ** -2 + (2 * count_std) ** -2
        events.append(central_event(effective**-0.5, 4, cohort, method))
        assert r.metrics["dp_effective_noise_multiplier"] == pytest.approx(effective**-0.5)
    assert rounds[0].metrics["dp_noise_std"] == pytest.approx(z_update * norms[1] / cohort)
    assert outcome.summary["final"]["epsilon"] == pytest.approx(
        epsilon_of(events, method, 1e-5), rel=1e-6
    )
    assert rounds[0].metrics["epsilon"] < rounds[1].metrics["epsilon"]
    assert outcome.summary["privacy"]["clipping"] == "adaptive (client side)"
