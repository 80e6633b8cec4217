"""A new metric is one small server callback: it reaches metrics.parquet, summary.json, the
console summary and the W&B run with no edit to the writer, console or logger; a callback can
stop a run. Central evaluation overlaps the next round's training unless a callback reads the
round's metrics, and clients share actor calls (two per call here) unless told to go one by
one; both ways give the same results. Also: the actor pools kill busy actors when they rebuild
a pool. Two real Flower/Ray runs on tiny synthesized data."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray
from rich.console import Console
from tiny_scenario import tiny_scenario

from simfl.console import summary_table
from simfl.engine.records import TIMING_COLUMNS
from simfl.engine.server_callbacks import CallbackResult, RoundState, ServerCallback
from simfl.run import RunOptions, run_scenario


class GlobalUpdateNorm(ServerCallback):
    """The L2 norm of the change of the global model in each round (none at round 0)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def after_round(self, state: RoundState) -> CallbackResult | None:
        if state.previous is None:
            return None
        new, old = state.arrays.to_numpy_ndarrays(), state.previous.to_numpy_ndarrays()
        norm = math.sqrt(
            sum(
                float(np.sum((a - b).astype(np.float64) ** 2))
                for a, b in zip(new, old, strict=True)
            )
        )
        self.norms.append(norm)
        return CallbackResult({"update_l2_norm": norm})


class StopAfter(ServerCallback):
    """Stops the run after ``last_round`` (as a privacy budget or a time budget would)."""

    def __init__(self, last_round: int) -> None:
        self.last_round = last_round

    def after_round(self, state: RoundState) -> CallbackResult | None:
        if state.server_round >= self.last_round:
            return CallbackResult(stop=f"test budget reached at round {state.server_round}")
        return None


class CentralProbe(ServerCallback):
    """Records, per round, whether central evaluation's metrics are in the record yet."""

    def __init__(self, reads_round_metrics: bool) -> None:
        self.reads_round_metrics = reads_round_metrics
        self.saw_central: list[bool] = []

    def after_round(self, state: RoundState) -> None:
        self.saw_central.append("central_accuracy" in state.record.metrics)


@pytest.fixture(scope="module")
def outcome_and_session(tmp_path_factory: pytest.TempPathFactory, tiny_cache, ray_runtime):
    root = tmp_path_factory.mktemp("callbacks")
    scenario = tiny_scenario(
        root / "results",
        tiny_cache,
        scenario={"rounds": 3},
        # "auto" would put the evaluation on the actors where they take every core
        resources={"clients_per_call": 2, "evaluation_overlap": "driver"},
    )
    norm, probe = GlobalUpdateNorm(), CentralProbe(reads_round_metrics=False)
    outcome = run_scenario(
        scenario,
        RunOptions(
            session=ray_runtime, server_callbacks=[norm, StopAfter(2), probe], wandb_mode="offline"
        ),
    )
    return outcome, norm, ray_runtime, probe, scenario


@pytest.mark.ray
def test_callback_metric_reaches_every_sink(outcome_and_session) -> None:
    outcome, norm, *_ = outcome_and_session
    run_dir: Path = outcome.run_dir
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    assert metrics["round"].tolist() == [0, 1, 2]  # stopped after round 2 of 3
    assert math.isnan(metrics["update_l2_norm"].iloc[0])
    assert metrics["update_l2_norm"].iloc[1:].tolist() == norm.norms
    assert all(value > 0 for value in norm.norms)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["final"]["update_l2_norm"] == norm.norms[-1]
    assert summary["stopped"] == "stopped after round 2: test budget reached at round 2"
    assert summary["rounds_completed"] == 2
    console = Console(record=True, width=120)
    console.print(summary_table(summary))
    line = f"final update_l2_norm\\s+│ {norm.norms[-1]:.4f}"
    assert re.search(line, console.export_text())
    logged = b"".join(p.read_bytes() for p in (run_dir / "wandb").rglob("*.wandb"))
    assert b"update_l2_norm" in logged


@pytest.mark.ray
def test_rebuilding_a_pool_kills_busy_actors_too(outcome_and_session) -> None:
    _, _, session, *_ = outcome_and_session
    pools = session.pools
    key, pool = next(iter(pools._pools.items()))
    assert len(pools._actors[key]) == pool.num_actors >= 1
    busy = pool.pool.pop()  # as Flower does while an actor serves a client
    resources, kwargs = json.loads(key)
    rebuilt = pools.get(resources, kwargs)  # an actor is missing: the pool is rebuilt
    assert rebuilt is not pool
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(busy.__ray_ready__.remote(), timeout=30)


@pytest.mark.ray
def test_central_evaluation_overlaps_unless_a_callback_reads_it(outcome_and_session) -> None:
    """Rounds 1 and 2 ran their central evaluation in the background (the last round waits
    for it before the run ends); a callback that declares ``reads_round_metrics`` makes every
    callback run in order. The first run trained and evaluated two clients per actor call, the
    second one per call. The results are the same, bit for bit, column for column."""
    overlapped, _, session, probe, scenario = outcome_and_session
    assert probe.saw_central == [True, False, False]  # round 0 is always in the foreground
    reader = CentralProbe(reads_round_metrics=True)
    one_per_call = scenario.resources.model_copy(update={"clients_per_call": 1})
    in_order = run_scenario(
        scenario.model_copy(update={"resources": one_per_call}),
        RunOptions(
            session=session,
            server_callbacks=[GlobalUpdateNorm(), StopAfter(2), reader],
            wandb_mode="disabled",
        ),
    )
    assert reader.saw_central == [True, True, True]
    timing = list(TIMING_COLUMNS)
    first = pd.read_parquet(overlapped.run_dir / "metrics.parquet").drop(columns=timing)
    second = pd.read_parquet(in_order.run_dir / "metrics.parquet").drop(columns=timing)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert first["central_accuracy"].iloc[-1] > 1 / 12  # evaluated, and above chance


@pytest.mark.ray
def test_central_evaluation_as_slices_on_the_actors_gives_the_same_bits(
    outcome_and_session,
) -> None:
    """Central evaluation cut into slices that the actors take behind the next round's
    clients (simfl.engine.central_slices), one actor thread each, against the run that
    evaluated on the driver: the same metrics, bit for bit."""
    on_driver, _, session, _, scenario = outcome_and_session
    probe = CentralProbe(reads_round_metrics=False)
    actors = scenario.resources.model_copy(update={"evaluation_overlap": "actors"})
    sliced = run_scenario(
        scenario.model_copy(update={"resources": actors}),
        RunOptions(
            session=session,
            server_callbacks=[GlobalUpdateNorm(), StopAfter(2), probe],
            wandb_mode="disabled",
        ),
    )
    assert probe.saw_central == [True, False, False]  # rounds 1 and 2: behind the next round
    assert not (sliced.run_dir / "failures.json").exists()  # no slice fell back to the driver
    timing = list(TIMING_COLUMNS)
    first = pd.read_parquet(on_driver.run_dir / "metrics.parquet").drop(columns=timing)
    second = pd.read_parquet(sliced.run_dir / "metrics.parquet").drop(columns=timing)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
