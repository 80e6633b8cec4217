"""A client actor killed with ``kill -9`` in the middle of a round, as the OOM killer does.

The run goes on: the actor is replaced, its client trains again on another actor, and the
metrics are exactly those of a run where nothing died; ``failures.json`` records the death as
an infrastructure failure. Past ``resources.actor_restarts`` the run fails in one line, and
resumes. The runs are in this process, on the session's Ray runtime, whose actors are this
process's descendants.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import psutil
import pytest
from cli_process import kill_a_busy_actor
from tiny_scenario import TINY

from simfl.engine.records import TIMING_COLUMNS

ROUNDS, KILL_AFTER = 6, 2


def _scenario(root: Path, name: str, cache: Path, budget: int = 3) -> Path:
    text = TINY.format(results=root / name, cache=cache).replace("rounds = 2", f"rounds = {ROUNDS}")
    path = root / f"{name}.toml"
    path.write_text(text + f"\n[resources]\nactor_restarts = {budget}\n")
    return path


def _metrics(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "metrics.parquet")
    return frame.drop(columns=[c for c in TIMING_COLUMNS if c in frame])


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_cache, ray_runtime) -> pd.DataFrame:
    from simfl.cli import invoke

    root = tmp_path_factory.mktemp("no-death")
    assert invoke(["run", str(_scenario(root, "reference", tiny_cache))]) == 0
    (run_dir,) = (root / "reference").iterdir()
    return _metrics(run_dir)


@pytest.mark.ray
def test_a_killed_actor_is_replaced_and_the_run_is_bit_identical(
    tmp_path, tiny_cache, reference, cli, ray_runtime
):
    killer = kill_a_busy_actor(psutil.Process(), tmp_path / "killed", "*/metrics.jsonl", KILL_AFTER)
    done = cli("run", str(_scenario(tmp_path, "killed", tiny_cache)))
    killer.join()
    assert killer.killed is not None, "no client actor was caught running"
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    (run_dir,) = (tmp_path / "killed").iterdir()
    pd.testing.assert_frame_equal(_metrics(run_dir), reference, check_exact=True)
    (failure,) = json.loads((run_dir / "failures.json").read_text())
    assert failure["kind"] == "infrastructure" and failure["round"] > KILL_AFTER
    assert failure["reason"].startswith("client actor died (ActorDiedError")
    assert failure["reason"].endswith("replaced, message rerun")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["infrastructure_failures"] == 1 and summary["clients_failed"] == 0
    pools = ray_runtime.pools  # the dead actor is forgotten, its replacement tracked
    for key, pool in pools._pools.items():
        assert len(pools._actors[key]) == pool.num_actors


@pytest.mark.ray
def test_past_the_restart_budget_the_run_fails_in_one_line_and_resumes(
    tmp_path, tiny_cache, reference, cli
):
    killer = kill_a_busy_actor(
        psutil.Process(), tmp_path / "fragile", "*/metrics.jsonl", KILL_AFTER
    )
    failed = cli("run", str(_scenario(tmp_path, "fragile", tiny_cache, budget=0)))
    killer.join()
    assert killer.killed is not None, "no client actor was caught running"
    (run_dir,) = (tmp_path / "fragile").iterdir()
    assert failed.returncode == 1
    (line,) = failed.stderr.strip().splitlines()
    assert "client actors died, more than resources.actor_restarts = 0 allows" in line
    assert line.endswith(f"resume with simfl run --resume {run_dir}")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"

    resumed = cli("run", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    pd.testing.assert_frame_equal(_metrics(run_dir), reference, check_exact=True)
