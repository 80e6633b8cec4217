"""[systems] end to end: real Flower/Ray simulations on tiny synthesized data (one Ray session).

- a fixed-profile run's simulated round time is the formula computed here by hand, to 1 µs;
- the same run is bit-identical to the scenario without [systems];
- FedBuff with C = K over every client and no staleness gives FedAvg's global weights;
- two FedBuff runs under heavy-tailed devices are bit-identical;
- over-selection keeps exactly K updates: a slow client sending huge noise never reaches
  aggregation;
- bad [systems] input is one line naming the key or file, exit 2, nothing in results/.
"""

from __future__ import annotations

import pickle
import tomllib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_end_to_end import TINY

from simfl.config import scenario_from_dict
from simfl.data.client_index import ClientIndex
from simfl.engine.records import TIMING_COLUMNS
from simfl.engine.runtime import ray_session
from simfl.engine.server_callbacks import RoundState, ServerCallback
from simfl.pipeline import prepare_run
from simfl.run import RunOptions, run_scenario
from simfl.systems.attacks import malicious_clients
from simfl.systems.clock import client_round_seconds

FIXED = {"ms_per_sample": 2.5, "down_kbps": 800.0, "up_kbps": 300.0, "latency_ms": 45.0}


class CaptureWeights(ServerCallback):
    """Keeps the global model after every round."""

    def __init__(self) -> None:
        self.rounds: dict[int, dict[str, np.ndarray]] = {}

    def after_round(self, state: RoundState) -> None:
        self.rounds[state.server_round] = {k: v.numpy().copy() for k, v in state.arrays.items()}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("systems")


def tiny(root: Path, name: str, **changes) -> dict:
    raw = tomllib.loads(TINY.format(results=root / "results" / name, cache=root / "cache"))
    raw["strategy"]["fraction_train"] = 1.0
    for table, values in changes.items():
        raw.setdefault(table, {}).update(values)
    return raw


@pytest.fixture(scope="module")
def runs(root: Path):
    """Every run of this module, in one Ray session."""
    trace = root / "devices.csv"
    bad = sorted(malicious_clients(3, 4, 0.25))  # TINY's seed, 4 clients, one attacker
    speeds = [1000.0 if client in bad else 1.0 for client in range(4)]
    trace.write_text(
        "client,ms_per_sample,down_kbps,up_kbps,latency_ms\n"
        + "".join(f"{c},{s},1000,1000,0\n" for c, s in enumerate(speeds))
    )
    scenarios = {
        "plain": tiny(root, "plain"),
        "fixed": tiny(root, "fixed", systems={"devices": FIXED}),
        "fedbuff-ck": tiny(
            root,
            "fedbuff-ck",
            scenario={"rounds": 1},
            strategy={"name": "fedbuff", "concurrency": 4, "buffer_size": 4},
        ),
        "fedbuff-a": tiny(
            root,
            "fedbuff-a",
            scenario={"rounds": 3},
            strategy={"name": "fedbuff", "concurrency": 3, "buffer_size": 2},
            systems={"devices": {"distribution": "lognormal", "ms_per_sample": 5.0, "sigma": 1.0}},
        ),
        "over-selection": tiny(
            root,
            "over-selection",
            strategy={"fraction_train": 0.5},  # K = 2, sample 3
            systems={
                "over_selection": 0.5,
                "devices": {"distribution": "trace", "trace": str(trace)},
                "attack": {"kind": "gaussian", "fraction": 0.25, "noise_std": 1000.0},
            },
        ),
    }
    scenarios["fedbuff-b"] = {**scenarios["fedbuff-a"]}
    scenarios["fedbuff-b"]["tracking"] = {
        **scenarios["fedbuff-a"]["tracking"],
        "results_dir": str(root / "results" / "fedbuff-b"),
    }
    out = {}
    with ray_session(None, {}) as session:
        for name, raw in scenarios.items():
            capture = CaptureWeights()
            scenario = scenario_from_dict(raw, f"{name}.toml")
            outcome = run_scenario(
                scenario,
                RunOptions(session=session, server_callbacks=[capture], wandb_mode="disabled"),
            )
            metrics = pd.read_parquet(outcome.run_dir / "metrics.parquet")
            out[name] = (scenario, metrics, capture, outcome)
    return out


def test_fixed_profile_round_time_is_the_formula_to_the_microsecond(runs):
    scenario, metrics, _, _ = runs["fixed"]
    index = ClientIndex(prepare_run(scenario).federation.index_dir)
    sizes = [len(index.client(c).train_rows) for c in range(4)]
    for _, row in metrics[metrics["round"] > 0].iterrows():
        model_bytes = row["bytes_up"] // 4  # every client sampled, one model each way
        by_hand = max(
            n * 1 * 2.5 / 1000 + model_bytes * 8 / 800_000 + model_bytes * 8 / 300_000 + 0.045
            for n in sizes
        )
        assert by_hand == pytest.approx(
            max(
                client_round_seconds(n, 1, 2.5, model_bytes, model_bytes, 800, 300, 45)
                for n in sizes
            ),
            abs=1e-12,
        )
        assert abs(row["sim_round_s"] - by_hand) < 1e-6
    assert metrics["sim_time_s"].tolist() == pytest.approx(
        metrics["sim_round_s"].fillna(0).cumsum().tolist(), abs=1e-9
    )


def test_equal_fast_always_available_run_is_bit_identical_to_no_systems(runs):
    _, plain, plain_weights, _ = runs["plain"]
    _, fixed, fixed_weights, _ = runs["fixed"]
    columns = [c for c in plain.columns if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(plain[columns], fixed[columns])
    for server_round, weights in plain_weights.rounds.items():
        for name, value in weights.items():
            assert np.array_equal(value, fixed_weights.rounds[server_round][name])
    assert (fixed.loc[fixed["round"] > 0, "clients_aggregated"] == 4).all()


def test_fedbuff_with_c_equal_k_and_no_staleness_gives_fedavgs_weights(runs):
    _, metrics, fedbuff, _ = runs["fedbuff-ck"]
    _, _, fedavg, _ = runs["plain"]
    assert metrics.loc[metrics["round"] == 1, "staleness_max"].item() == 0.0
    assert metrics.loc[metrics["round"] == 1, "clients_aggregated"].item() == 4
    for name, value in fedavg.rounds[1].items():
        np.testing.assert_allclose(fedbuff.rounds[1][name], value, rtol=0, atol=1e-6)
    assert any(not np.array_equal(fedavg.rounds[0][n], v) for n, v in fedavg.rounds[1].items())


def test_two_fedbuff_runs_are_bit_identical(runs):
    first, second = runs["fedbuff-a"][1], runs["fedbuff-b"][1]
    drop = [c for c in TIMING_COLUMNS if c in first]
    pd.testing.assert_frame_equal(first.drop(columns=drop), second.drop(columns=drop))
    assert list(first["round"]) == [0, 1, 2, 3]
    trained = first[first["round"] > 0]
    assert (trained["clients_aggregated"] == 2).all() and trained["sim_round_s"].gt(0).all()
    assert trained["staleness_max"].max() >= 1  # asynchrony did happen
    for name, value in runs["fedbuff-a"][2].rounds[3].items():
        assert np.array_equal(value, runs["fedbuff-b"][2].rounds[3][name])


def test_over_selection_keeps_exactly_k_and_never_aggregates_a_dropped_update(runs):
    _, metrics, weights, _ = runs["over-selection"]
    trained = metrics[metrics["round"] > 0]
    assert (trained["clients_sampled"] == 3).all()
    assert (trained["clients_aggregated"] == 2).all()
    assert (trained["clients_dropped_deadline"] == 1).all()
    # The one attacker is 1,000x slower, so always the straggler when sampled: had its update
    # (weights + N(0, 1000²)) reached aggregation, the global weights would be huge.
    for server_round, arrays in weights.rounds.items():
        assert max(float(np.abs(v).max()) for v in arrays.values()) < 50, server_round
    assert trained["central_loss"].lt(10).all()


# --------------------------------------------------------------------------- bad input


class Thing:
    pass


@pytest.mark.parametrize(
    ("command", "sets", "expected"),
    [
        ("validate", ["systems.devices.ms_per_sample=-2"], "key 'systems.devices.ms_per_sample'"),
        ("validate", ["systems.over_selection=-0.5"], "key 'systems.over_selection'"),
        (
            "validate",
            ["strategy.name=fedbuff", "strategy.concurrency=2", "strategy.buffer_size=3"],
            "buffer_size K (3) exceeds concurrency C (2)",
        ),
        (
            "run",
            ["systems.devices.distribution=trace", "systems.devices.trace={dir}/bad.csv"],
            "key 'systems.devices.trace'",
        ),
        (
            "run",
            ["systems.availability.kind=trace", "systems.availability.trace={dir}/thing.pkl"],
            "only plain data",
        ),
        (
            "run",
            ["systems.devices.distribution=trace", "systems.devices.trace={dir}/ordered.pkl"],
            "only plain data",
        ),
    ],
)
def test_bad_systems_input_is_one_line_exit_2_nothing_written(
    tmp_path: Path, command: str, sets: list[str], expected: str, cli
):
    (tmp_path / "bad.csv").write_text("client,ms_per_sample\n0,1\n")
    (tmp_path / "thing.pkl").write_bytes(pickle.dumps({0: Thing()}))
    (tmp_path / "ordered.pkl").write_bytes(pickle.dumps(OrderedDict(a=1)))
    results = tmp_path / "results"
    (tmp_path / "tiny.toml").write_text(TINY.format(results=results, cache=tmp_path / "cache"))
    args = [command, str(tmp_path / "tiny.toml")]
    for item in sets:
        args += ["--set", item.format(dir=tmp_path)]
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: tiny.toml: "), done.stderr
    assert expected in lines[0]
    assert not results.exists() or not any(results.iterdir())
