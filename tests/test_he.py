"""CKKS aggregation: the server adds ciphertexts it cannot decrypt, and the mean it gets back
is the plaintext weighted mean within the CKKS error the run reports.

The unit test drives the real pieces on real Flower Messages: Flower's FedAvg sampling the
clients of an in-memory grid, simfl's client encryption mod on each client's reply, the
server's HE aggregation with the public context and the key authority's decryption. The
end-to-end tests run the tiny scenario on the session's Ray runtime with and without HE.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flower_helpers import flower_task, in_memory_grid
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, RecordDict
from least_squares import reply
from tiny_scenario import tiny_scenario, tiny_text

from simfl import registry
from simfl.config import scenario_from_dict
from simfl.engine.plan import RunPlan
from simfl.privacy.he_ckks import KeyAuthority, from_bytes
from simfl.privacy.he_client import ERROR_KEY, encryption_mod, secret_context_path
from simfl.privacy.he_server import HEAggregation
from simfl.run import RunOptions, run_scenario

CLIENTS, DIM = 3, 5000  # two ciphertexts of 4096 values each


def _plan(tmp_path: Path) -> RunPlan:
    raw = {
        "scenario": {"name": "he-unit", "rounds": 1},
        "data": {"dataset": "synth-commands", "num_clients": CLIENTS},
        "partition": {"kind": "iid"},
        "model": {"name": "kws-cnn"},
        "strategy": {
            "name": "fedavg",
            "fraction_train": 1.0,
            "min_train_nodes": CLIENTS,
            "min_available_nodes": CLIENTS,
        },
        "privacy": {"he": {"enabled": True}},
    }
    scenario = scenario_from_dict(raw, "he.toml")
    return RunPlan(scenario, tmp_path, tmp_path, tmp_path, 12, tmp_path / "state")


def test_the_server_adds_what_it_cannot_read_and_gets_the_weighted_mean(tmp_path):
    plan = _plan(tmp_path)
    authority = KeyAuthority(plan.scenario.privacy.he)
    secret_context_path(plan).parent.mkdir(parents=True)
    secret_context_path(plan).write_bytes(authority.secret_context())
    inner = registry.STRATEGIES["fedavg"].load()(plan.scenario.strategy)
    strategy = HEAggregation(inner, authority)
    assert not strategy.context.is_private()  # the server's context holds no secret key

    rng = np.random.default_rng(0)
    x = rng.normal(size=DIM).astype(np.float32)
    models = [x + rng.normal(scale=0.1, size=DIM).astype(np.float32) for _ in range(CLIENTS)]
    weights = [10, 25, 65]
    mod = encryption_mod(plan)
    with flower_task():
        random.seed(0)
        sent = ArrayRecord({"weight": Array(x)})
        messages = list(strategy.configure_train(1, sent, ConfigRecord(), in_memory_grid(CLIENTS)))
        replies = []
        for i, message in enumerate(sorted(messages, key=lambda m: m.metadata.dst_node_id)):
            metrics = {"num-examples": weights[i], "train_loss": 1.0}
            answer = reply(message, models[i], metrics)
            replies.append(
                mod(
                    message, Context(0, 0, {}, RecordDict(), {}), lambda m, c, answer=answer: answer
                )
            )
        blob = replies[0].content["arrays"]["he-ciphertext"].numpy().tobytes()
        with pytest.raises(ValueError, match="secret"):  # the server cannot read an update
            from_bytes(strategy.context, blob)[0].decrypt()
        errors = [float(r.content["metrics"][ERROR_KEY]) for r in replies]
        aggregated, _ = strategy.aggregate_train(1, replies)

    expected = np.average(np.stack(models).astype(np.float64), axis=0, weights=weights)
    difference = np.abs(aggregated["weight"].numpy().astype(np.float64) - expected).max()
    bound = strategy.rounds[1].error_bound
    assert bound == pytest.approx(np.dot(weights, errors) / sum(weights))
    assert 0 < bound <= 1e-4  # the defaults' CKKS error
    assert difference <= bound + 1e-6  # the float32 model's own rounding besides
    assert strategy.rounds[1].ciphertext_bytes > 10 * 4 * DIM * CLIENTS


CENTRAL_DP = {
    "mode": "central",
    "clipping_side": "client",
    "noise_multiplier": 0.1,
    "clipping_norm": 1.0,
}


#: Every device alike, on a 1 Mbit/s uplink: ciphertexts take that much longer to send.
DEVICES = {"devices": {"ms_per_sample": 10.0, "up_kbps": 1000.0}}


@pytest.mark.ray
@pytest.mark.parametrize(
    ("privacy", "systems"),
    [({}, {}), (CENTRAL_DP, {}), ({}, DEVICES)],
    ids=["fedavg", "central-dp", "devices"],
)
def test_a_tiny_run_with_he_learns_as_the_run_without(
    privacy, systems, tmp_path, tiny_cache, ray_runtime
):
    """Both runs see the same cohorts and (seeded) DP noise; HE changes the mean only by its
    CKKS error, central DP's accountant charges the same epsilon, and on simulated devices the
    ciphertexts' bytes and encryption cost simulated time."""
    frames = {}
    for he in (False, True):
        scenario = tiny_scenario(
            tmp_path / "results",
            tiny_cache,
            scenario={"rounds": 3},
            privacy={**privacy, "he": {"enabled": he}},
            systems=systems,
        )
        options = RunOptions(
            wandb_mode="disabled", run_dir=tmp_path / f"he-{he}", session=ray_runtime
        )
        frames[he] = pd.read_parquet(run_scenario(scenario, options).run_dir / "metrics.parquet")
    plain, encrypted = frames[False], frames[True]
    np.testing.assert_allclose(encrypted["central_loss"], plain["central_loss"], rtol=0, atol=1e-5)
    assert list(encrypted["central_accuracy"]) == list(plain["central_accuracy"])
    if privacy:
        assert list(encrypted["epsilon"]) == list(plain["epsilon"])
    trained = encrypted[encrypted["round"] > 0]
    assert (trained["he_error_bound"] < 1e-6).all()
    assert (trained["bytes_up"] > 20 * plain.loc[plain["round"] > 0, "bytes_up"]).all()
    assert (trained["bytes_down"] == plain.loc[plain["round"] > 0, "bytes_down"]).all()
    if systems:  # each round waits for the slowest client's upload of its ciphertexts
        bytes_s = 8 * (trained["bytes_up"] - plain.loc[plain["round"] > 0, "bytes_up"]) / 1e6
        slower = trained["sim_round_s"] - plain.loc[plain["round"] > 0, "sim_round_s"]
        assert (slower > bytes_s / 3).all()  # a third of the round's bytes, at least


@pytest.mark.parametrize(
    ("he", "strategy", "says"),
    [
        ("coeff_mod_bit_sizes = [60, 60, 60, 60]", "fedavg", "below 128-bit security"),
        ("coeff_mod_bit_sizes = [40, 30, 40]", "fedavg", "global_scale_bits"),
        ("", "fedmedian", "strategy.name = 'fedmedian'"),
        ("", "scaffold", "strategy.name = 'scaffold'"),
        ("[privacy.secagg]\nenabled = true", "fedavg", "enable one of them"),
    ],
)
def test_bad_he_settings_are_refused_in_one_line(cli, tmp_path, tiny_cache, he, strategy, says):
    text = tiny_text(tmp_path / "results", tiny_cache)
    text = text.replace('name = "fedavg"', f'name = "{strategy}"')
    (tmp_path / "he.toml").write_text(text + f"\n[privacy.he]\nenabled = true\n{he}\n")
    done = cli("run", str(tmp_path / "he.toml"), "--wandb", "disabled", cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert says in lines[0] and "he.toml" in lines[0]
    assert not (tmp_path / "results").exists()
