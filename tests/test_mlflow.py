"""MLflow against a real ``mlflow server`` on 127.0.0.1 (SQLite, a free port), read back
through :class:`mlflow.MlflowClient`: a run killed with -9 and resumed is one MLflow run, each
step logged once and equal to ``metrics.parquet``, with its params, tags and artifacts; a
sweep killed mid-cell and rerun is one parent run with a nested run per cell, the resumed
cell reusing its run, and its report attached; an unreachable server is refused before
anything is written; a server that goes away mid-run stops the tracking, not the run."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_process import start_simfl
from mlflow import MlflowClient
from mlflow_server import free_port, mlflow_server, stop
from tiny_scenario import tiny_scenario, tiny_text

from simfl.config import load_scenario
from simfl.engine.records import TIMING_COLUMNS
from simfl.tracking.callbacks import RunCallback
from simfl.tracking.mlflow_store import flat_params

ROUNDS, KILL_AFTER = 3, 1
KILLED = ("run", "sweep")
SWEEP = '\n[sweep]\n"strategy.name" = ["fedavg", "fedprox"]\n'


def _workspace(root: Path, tiny_cache: Path, sweep: bool = False) -> Path:
    root.mkdir(parents=True)
    text = tiny_text(root / "results", tiny_cache).replace("rounds = 2", f"rounds = {ROUNDS}")
    text = text.replace('wandb_mode = "offline"', 'wandb_mode = "disabled"')
    (root / "tiny.toml").write_text(text + (SWEEP if sweep else ""))
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as running:
        yield running


@pytest.fixture(scope="module")
def killed(server, tmp_path_factory, tiny_cache) -> dict[str, Path]:
    """A run and a 2-cell sweep, each logging to the server, killed -9 (the whole process
    group) once round ``KILL_AFTER`` is checkpointed (the sweep: in its second cell)."""
    root = tmp_path_factory.mktemp("killed")
    spaces = {
        name: _workspace(root / name, tiny_cache, name == "sweep") for name in ("run", "sweep")
    }
    processes = {
        name: start_simfl(command, str(space / "tiny.toml"), "--mlflow", server.uri, cwd=space)
        for name, space, command in (
            ("run", spaces["run"], "run"), ("sweep", spaces["sweep"], "sweep")
        )
    }  # fmt: skip
    checkpoint = f"checkpoints/round-{KILL_AFTER:06d}/checkpoint.pt"
    patterns = {"run": f"*/{checkpoint}", "sweep": f"sweeps/*/cells/*/{checkpoint}"}
    found: dict[str, Path] = {}
    deadline = time.monotonic() + 300
    try:
        while len(found) < len(processes):
            for name, process in processes.items():
                results = spaces[name] / "results"
                hits = [] if name in found else list(results.glob(patterns[name]))
                done = list(results.glob("sweeps/*/cells/*/DONE"))
                if hits and (name == "run" or done):
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    found[name] = hits[0].parents[2]
                elif name not in found:
                    assert process.poll() is None, f"{name} ended before it was killed"
            assert time.monotonic() < deadline, "round never checkpointed"
            time.sleep(0.05)
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return found


def _runs_of(client: MlflowClient, directory: Path) -> list:
    experiment = client.get_experiment_by_name("tiny").experiment_id
    found = f"tags.`simfl.run_dir` = '{directory.resolve()}'"
    return client.search_runs([experiment], filter_string=found)


def _assert_metrics_equal_parquet(client: MlflowClient, run_id: str, run_dir: Path) -> None:
    """Every column of metrics.parquet is a metric logged once per round, with its value
    (timing columns: once per round; a round re-run after the kill keeps its first timing)."""
    frame = pd.read_parquet(run_dir / "metrics.parquet")
    for column in frame.columns.drop("round"):
        history = client.get_metric_history(run_id, column)
        steps = [metric.step for metric in history]
        expected = frame.loc[frame[column].notna(), ["round", column]]
        assert sorted(steps) == expected["round"].tolist(), column  # each step exactly once
        if column in TIMING_COLUMNS:
            continue
        logged = {metric.step: metric.value for metric in history}
        for step, value in expected.itertuples(index=False):
            assert logged[step] == value, (column, step)


@pytest.mark.ray
def test_a_killed_run_resumes_into_one_mlflow_run(server, killed, cli, ray_runtime):
    client, run_dir = MlflowClient(server.uri), killed["run"]
    (before,) = _runs_of(client, run_dir)
    assert before.info.status == "RUNNING"  # kill -9: nothing could end it

    result = cli("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr

    (run,) = _runs_of(client, run_dir)  # the same run, not a second one
    assert run.info.run_id == before.info.run_id and run.info.status == "FINISHED"
    _assert_metrics_equal_parquet(client, run.info.run_id, run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    final = run.data.metrics["summary/final/central_accuracy"]
    assert final == summary["final"]["central_accuracy"]
    scenario = load_scenario(run_dir / "scenario.toml")
    assert run.data.params["scenario.rounds"] == str(ROUNDS)
    assert run.data.params["strategy.name"] == "fedavg"
    assert run.data.params["train.lr"] == "0.05"
    assert json.loads(run.data.params["data.synth.words"])[:2] == ["yes", "no"]
    assert len(run.data.params) == len(flat_params(scenario.model_dump(mode="json")))
    tags = run.data.tags
    assert tags["simfl.scenario_hash"] == summary["scenario_hash"]
    assert tags["simfl.git_commit"] == summary["git_commit"]
    assert tags["mlflow.source.git.commit"] == summary["git_commit"].removesuffix("+dirty")
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    wanted = {"scenario.toml", "summary.json", "metrics.parquet", "partition.png", "metrics.csv"}
    assert wanted <= artifacts
    copy = Path(client.download_artifacts(run.info.run_id, "summary.json", str(run_dir.parent)))
    assert json.loads(copy.read_text()) == summary


@pytest.mark.ray
def test_a_sweep_is_a_parent_run_whose_resumed_cell_reuses_its_run(
    server, killed, cli, ray_runtime
):
    client, cell_dir = MlflowClient(server.uri), killed["sweep"]
    root = cell_dir.parents[1]
    (parent,) = _runs_of(client, root)
    children_before = _children(client, parent.info.run_id)
    assert sorted(child.info.status for child in children_before) == ["FINISHED", "RUNNING"]

    space = root.parents[2]  # resumed as a sweep is: the same command again
    result = cli("sweep", str(space / "tiny.toml"), "--mlflow", server.uri, cwd=space)
    assert result.returncode == 0, result.stderr

    (parent,) = _runs_of(client, root)
    assert parent.info.status == "FINISHED" and parent.data.params["sweep.strategy.name"]
    children = _children(client, parent.info.run_id)
    assert {c.info.run_id for c in children} == {c.info.run_id for c in children_before}
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED"]
    for child in children:
        run_dir = Path(child.data.tags["simfl.run_dir"])
        assert run_dir.parent == root / "cells"
        assert child.data.params["strategy.name"] in ("fedavg", "fedprox")
        _assert_metrics_equal_parquet(client, child.info.run_id, run_dir)

    report = cli("report", str(root))
    assert report.returncode == 0, report.stderr
    attached = {item.path for item in client.list_artifacts(parent.info.run_id, "report")}
    wanted = {"report.html", "comparison_table.tex", "comparison.csv", "winner_map.csv"}
    assert {f"report/{name}" for name in wanted} <= attached
    sweep_files = {item.path for item in client.list_artifacts(parent.info.run_id, "sweep")}
    assert {"sweep/index.parquet", "sweep/index.csv"} <= sweep_files


def _children(client: MlflowClient, parent_id: str) -> list:
    experiment = client.get_experiment_by_name("tiny").experiment_id
    nested = f"tags.`mlflow.parentRunId` = '{parent_id}'"
    return sorted(
        client.search_runs([experiment], filter_string=nested),
        key=lambda run: run.data.params["strategy.name"],
    )


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_an_unreachable_server_is_one_line_and_nothing_is_written(
    command, tmp_path, tiny_cache, cli
):
    space = _workspace(tmp_path / "space", tiny_cache, sweep=command == "sweep")
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = cli(command, str(space / "tiny.toml"), "--mlflow", uri, cwd=space)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"tracking.mlflow_uri {uri}: the MLflow tracking store did not answer" in line
    assert not (space / "results").exists()


def test_a_uri_mlflow_cannot_log_to_is_refused_in_one_line(tmp_path, tiny_cache, cli):
    space = _workspace(tmp_path / "space", tiny_cache)
    result = cli("run", str(space / "tiny.toml"), "--mlflow", "htp://127.0.0.1:5000", cwd=space)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "--mlflow: 'htp://127.0.0.1:5000' is not an MLflow store: allowed:" in line


class _StopServerAfter(RunCallback):
    """Stops the tracking server once ``server_round`` is recorded (MLflow logged it first)."""

    def __init__(self, process, server_round: int) -> None:
        self.process, self.server_round = process, server_round

    def on_round_end(self, record) -> None:
        if record.round == self.server_round:
            stop(self.process)


@pytest.mark.ray
def test_a_server_gone_mid_run_stops_tracking_once_and_the_run_completes(
    tmp_path, tiny_cache, ray_runtime, capfd
):
    from simfl.run import RunOptions, run_scenario

    with mlflow_server(tmp_path / "server") as gone:
        tracking = {"mlflow_uri": gone.uri, "wandb_mode": "disabled"}
        scenario = tiny_scenario(tmp_path / "results", tiny_cache, tracking=tracking)
        options = RunOptions(trackers=[_StopServerAfter(gone.process, 1)], session=ray_runtime)
        outcome = run_scenario(scenario, options)
    assert outcome.summary["status"] == "completed"
    frame = pd.read_parquet(outcome.run_dir / "metrics.parquet")
    assert frame["round"].tolist() == [0, 1, 2]
    assert not math.isnan(frame["central_accuracy"].iloc[-1])
    said = capfd.readouterr().err
    assert said.count("MLflow tracking stopped at round 2") == 1
    assert said.count("MLflow tracking stopped") == 1


class _AtRound(RunCallback):
    """At the end of round 1: a SIGTERM as the signal handler would take it, or an error."""

    def __init__(self, interruption=None) -> None:
        self.interruption = interruption

    def on_round_end(self, record) -> None:
        if record.round != 1:
            return
        if self.interruption is None:
            raise RuntimeError("the recorder broke")
        self.interruption.handle(signal.SIGTERM)


@pytest.mark.ray
def test_interrupted_and_failed_runs_end_killed_and_failed(
    server, tmp_path, tiny_cache, ray_runtime
):
    from simfl.engine.interrupt import Interruption, RunInterrupted
    from simfl.run import RunOptions, run_scenario

    tracking = {"mlflow_uri": server.uri, "wandb_mode": "disabled"}
    client = MlflowClient(server.uri)
    for name, expected in (("interrupted", "KILLED"), ("failed", "FAILED")):
        scenario = tiny_scenario(
            tmp_path / name, tiny_cache, tracking=tracking, scenario={"rounds": 4}
        )  # a stop after round 1 lands before round 4: the run ends interrupted
        interruption = Interruption()
        watcher = _AtRound(interruption if name == "interrupted" else None)
        options = RunOptions(
            trackers=[watcher], session=ray_runtime, interruption=interruption,
            run_dir=tmp_path / name / "run",
        )  # fmt: skip
        with pytest.raises((RunInterrupted, Exception)):
            run_scenario(scenario, options)
        (run,) = _runs_of(client, tmp_path / name / "run")
        assert run.info.status == expected, name
        assert run.data.tags["simfl.status"] == name
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "central_accuracy")]
        logged = json.loads((tmp_path / name / "run" / "summary.json").read_text())
        assert steps == list(range(logged["rounds_completed"] + 1)) and 1 in steps
