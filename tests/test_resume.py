"""Run checkpoints: a run killed with ``kill -9`` and resumed ends exactly like one never killed.

Each killed run is a real ``simfl run`` process on the tiny end-to-end scenario (6 rounds), killed
with its Ray runtime; the strategies' runs are started a few at a time and each is killed once its
round 3 is checkpointed. The reference run and the resumption go through the same CLI in this
process, on the session's Ray runtime (a fresh process changes nothing in the metrics, as
``test_end_to_end`` shows). Each strategy keeps a different kind of state across rounds: FedAdam
the global model and its server moments (m_t, v_t: a Flower strategy's own attributes);
SCAFFOLD its server control variate (simfl's strategy state) and every client's own (client
state files); Ditto every client's personal model. FedDyn, MOON, pFedMe, FedPer and FedNova,
whose state is of those same kinds, are stopped and resumed in ``test_resume_features``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import torch
from cli_process import start_simfl
from test_end_to_end import TINY

from simfl.engine.checkpoint import latest_checkpoint_dir, load_checkpoint
from simfl.engine.records import TIMING_COLUMNS

ROUNDS, KILL_AFTER = 6, 3
#: Per strategy: its ``--set`` overrides and the state its checkpoint holds besides the model
#: (simfl's stateful parts by name; a Flower strategy's own attributes by theirs).
STRATEGIES = {  # FedAvg's state (the global model) is a part of FedAdam's
    "fedadam": (["strategy.name=fedadam"], {"current_arrays", "m_t", "v_t"}),  # Flower's own
    "scaffold": (["strategy.name=scaffold"], {"strategy"}),  # c; each c_i: client state
    "ditto": (["strategy.name=ditto", "strategy.lam=0.5"], set()),  # each v_k: client state
}
#: Killed runs started at once (each with its own Ray runtime, so a few on a small machine).
AT_ONCE = 3


def _set(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def _workspace(root: Path, tiny_cache: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = TINY.format(results=root / "results", cache=tiny_cache)
    (root / "tiny.toml").write_text(text.replace("rounds = 2", f"rounds = {ROUNDS}"))
    (root / "results").mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_cache) -> Path:
    return _workspace(tmp_path_factory.mktemp("resume"), tiny_cache)


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory, tiny_cache) -> dict[str, Path]:
    """Every strategy's run, killed after round ``KILL_AFTER``, each in a workspace of its own."""
    root = tmp_path_factory.mktemp("killed")
    runs = {
        name: (_workspace(root / name, tiny_cache), _set(overrides))
        for name, (overrides, _) in STRATEGIES.items()
    }
    return _kill_each_after(runs, KILL_AFTER)


def _new_run_dir(results: Path, before: set[Path]) -> Path:
    (run_dir,) = set(results.iterdir()) - before
    return run_dir


def _kill_each_after(runs: dict[str, tuple[Path, list[str]]], server_round: int) -> dict[str, Path]:
    """Start the runs (``AT_ONCE`` at a time) and kill -9 each one's whole process group once
    its round k is checkpointed: its run directory, by name."""
    pending, active, killed = list(runs), {}, {}
    deadline = time.monotonic() + 600
    try:
        while pending or active:
            while pending and len(active) < AT_ONCE:
                name = pending.pop(0)
                root, args = runs[name]
                active[name] = start_simfl("run", str(root / "tiny.toml"), *args, cwd=root)
            for name, process in list(active.items()):
                pattern = f"*/checkpoints/round-{server_round:06d}/checkpoint.pt"
                checkpoints = list((runs[name][0] / "results").glob(pattern))
                if checkpoints:
                    os.killpg(process.pid, signal.SIGKILL)  # driver, Ray, actors: the node is gone
                    process.wait()
                    killed[name] = checkpoints[0].parents[2]
                    del active[name]
                else:
                    assert process.poll() is None, f"{name}: the run ended before it was killed"
            assert time.monotonic() < deadline, f"round {server_round} was never checkpointed"
            time.sleep(0.05)
    finally:
        for process in active.values():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return killed


def _metrics(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "metrics.parquet")
    return frame.drop(columns=[c for c in TIMING_COLUMNS if c in frame])


@pytest.mark.ray
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_killed_run_resumes_to_bit_identical_metrics(strategy, killed_runs, cli, ray_runtime):
    overrides, components = STRATEGIES[strategy]
    killed = killed_runs[strategy]
    workspace = killed.parents[1]
    before = set((workspace / "results").iterdir())
    reference = cli("run", str(workspace / "tiny.toml"), *_set(overrides), cwd=workspace)
    assert reference.returncode == 0, reference.stderr
    reference_dir = _new_run_dir(workspace / "results", before)

    summary = json.loads((killed / "summary.json").read_text())
    assert summary["status"] == "running"  # killed: never "completed"
    checkpoint = load_checkpoint(latest_checkpoint_dir(killed), str(killed))
    assert set(checkpoint.components) | set(checkpoint.strategy) == components
    run_id = (killed / "wandb_run_id").read_text().strip()

    resumed = cli("run", "--resume", str(killed), cwd=workspace)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    resumed_from = int(resumed.stdout.split("after round ")[1].split()[0])
    assert KILL_AFTER <= resumed_from < ROUNDS  # from the checkpoint, not from round 0

    expected = _metrics(reference_dir)
    pd.testing.assert_frame_equal(_metrics(killed), expected, check_exact=True)
    for table in ("clients.parquet", "client_updates.parquet"):  # every round's clients, once
        frames = [pd.read_parquet(d / table) for d in (killed, reference_dir)]
        pd.testing.assert_frame_equal(*frames, check_exact=True)
    assert list(expected["round"]) == list(range(ROUNDS + 1))
    if strategy in ("ditto", "pfedme"):  # personal models give the personalized figures
        trained = expected[expected["round"] == ROUNDS]
        assert (trained["pers_loss_mean"] != trained["fed_loss_mean"]).all()
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["rounds_completed"] == ROUNDS
    assert not (killed / "checkpoints").exists()  # a completed run drops its checkpoints
    pieces = list((killed / "wandb").glob("offline-run-*"))
    assert len(pieces) == 2 and all(p.name.endswith(f"-{run_id}") for p in pieces)  # one run


def test_resume_refuses_what_it_cannot_resume(workspace, tmp_path, cli):
    done = cli("run", "--resume", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert done.returncode == 2 and "no such run directory" in done.stderr
    done = cli("run", "--resume", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "not a run directory" in done.stderr


def _interrupted_run_dir(workspace: Path, tmp_path: Path, checkpoint_payload) -> Path:
    """A run directory as a killed run leaves it, with the given checkpoint file."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints" / "round-000003").mkdir(parents=True)
    (run_dir / "scenario.toml").write_text((workspace / "tiny.toml").read_text())
    (run_dir / "summary.json").write_text('{"status": "running"}')
    checkpoint_payload(run_dir / "checkpoints" / "round-000003" / "checkpoint.pt")
    return run_dir


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (lambda path: path.write_bytes(b"\x80\x02truncated"), "cannot be loaded"),
        # A pickled object (not tensors and plain values) is refused, never unpickled.
        (lambda path: torch.save({"format": 1, "x": datetime.now()}, path), "pickled objects"),
    ],
)
def test_a_bad_checkpoint_is_one_line_and_never_unpickled(
    workspace, tmp_path, payload, reason, cli
):
    run_dir = _interrupted_run_dir(workspace, tmp_path, payload)
    done = cli("run", "--resume", str(run_dir), cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "checkpoint round-000003 cannot be loaded" in lines[0] and reason in lines[0]
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoints",
        "scenario.toml",
        "summary.json",
    ]


def test_a_checkpoint_gives_back_exactly_the_state_it_holds(tmp_path):
    """A run's stateful parts are named by class, so a callback without state (one a test
    adds) renames none; their state goes through a ``weights_only`` load (NumPy floats
    included), and a checkpoint without the state of one of the run's parts is refused: that
    part would silently start again. Whole runs: ``tests/test_resume_features.py``."""
    import numpy as np
    from flwr.app import Array, ArrayRecord

    from simfl.engine.checkpoint import Checkpointer, load_checkpoint, stateful_components
    from simfl.engine.server_callbacks import ServerCallback
    from simfl.errors import SimflError
    from simfl.systems.clock import SimulatedClock
    from simfl.tracking.callbacks import History

    clock = SimulatedClock(0.5)
    clock.advance(np.float64(12.5))
    parts = stateful_components(object(), object(), [ServerCallback(), clock, SimulatedClock(0.5)])
    assert list(parts) == ["callback-SimulatedClock", "callback-SimulatedClock-1"]
    checkpointer = Checkpointer(tmp_path, 1, History(), tmp_path / "no-client-state")
    arrays = ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))})
    checkpointer.write(checkpointer.snapshot(1, arrays, object(), parts, last_round=False))
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "round-000001", "run")
    again = {name: SimulatedClock(0.5) for name in parts}
    checkpoint.restore(object(), again)
    assert again["callback-SimulatedClock"].now_s == 12.5
    assert again["callback-SimulatedClock-1"].now_s == 0.0
    with pytest.raises(SimflError, match="holds the state of"):
        checkpoint.restore(object(), {"callback-SimulatedClock": SimulatedClock(0.5)})
