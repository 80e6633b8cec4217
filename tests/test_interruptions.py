"""Stop signals to a real ``simfl run``: SIGTERM (preemption), Ctrl-C twice, SLURM's SIGUSR1.

Each signal goes to a child ``simfl run`` of the tiny scenario (8 rounds) once round 3 (4 for
SIGUSR1) is in its metrics. The run must stop after its round (or abandon it: on the second
Ctrl-C, or at once with ``stop_grace_s`` = 0.001 for SIGUSR1) with the signal's exit code,
print at most the progress line and the one line that says how to resume (no traceback),
leave no process it started (Ray, actors, W&B) and mark itself interrupted; ``--resume`` must
then end exactly as a run never interrupted. The three runs start together (their Ray
runtimes are their own), so the module costs about one run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest
from cli_process import child_env
from tiny_scenario import TINY

from simfl.engine.interrupt import RunInterrupted
from simfl.engine.records import TIMING_COLUMNS

ROUNDS, SIGNAL_AFTER = 8, 3
PLANS = {  # what is sent (0.2 s apart), and the exit code that must come back
    "sigterm": ([signal.SIGTERM], 143),
    "sigint-twice": ([signal.SIGINT, signal.SIGINT], 130),
    "sigusr1-abandons": ([signal.SIGUSR1], 138),
}
#: The run whose round in progress is abandoned at once, with a checkpoint every 3 rounds: it
#: resumes from the last one written before the signal if the round after it was abandoned.
ABANDONS = "\n[resources]\nstop_grace_s = 0.001\n"


@dataclass
class Stopped:
    run_dir: Path
    returncode: int
    seconds_to_exit: float
    output_after_signal: str
    processes_left: list[str]


def _write_scenario(root: Path, name: str, cache: Path) -> Path:
    text = TINY.format(results=root / name, cache=cache)
    text = text.replace("rounds = 2", f"rounds = {ROUNDS}")
    if name == "sigusr1-abandons":
        text = text.replace("[tracking]", "[tracking]\ncheckpoint_every = 3") + ABANDONS
    path = root / f"{name}.toml"
    path.write_text(text)
    return path


def _metrics_lines(results: Path) -> int:
    files = list(results.glob("*/metrics.jsonl"))
    return len(files[0].read_text().splitlines()) if files else 0


def _signal_all(root: Path, cache: Path) -> dict[str, Stopped]:
    """Start one run per plan, signal each after round 3, wait for every one to exit."""
    started = {}
    for name in PLANS:
        log = (root / f"{name}.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "simfl.cli",
            "run",
            str(_write_scenario(root, name, cache)),
        ]
        env = {**child_env(), "PYTHONUNBUFFERED": "1"}  # what is printed is in the log at once
        process = subprocess.Popen(
            command, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        started[name] = process
    signalled: dict[str, tuple[float, int, list[psutil.Process]]] = {}
    deadline = time.monotonic() + 300
    while len(signalled) < len(PLANS) and time.monotonic() < deadline:
        for name, process in started.items():
            if name in signalled or _metrics_lines(root / name) < after_round(name) + 1:
                continue
            assert process.poll() is None, f"{name}: the run ended before its signal"
            family = psutil.Process(process.pid).children(recursive=True)
            size = (root / f"{name}.log").stat().st_size
            for signum in PLANS[name][0]:
                os.kill(process.pid, signum)
                time.sleep(0.2)
            signalled[name] = (time.monotonic(), size, family)
        time.sleep(0.02)
    stopped = {}
    for name, process in started.items():
        if name not in signalled:
            process.kill()
            pytest.fail(f"{name}: round {SIGNAL_AFTER} never finished")
        returncode = process.wait(timeout=120)
        sent_at, size, family = signalled[name]
        seconds = time.monotonic() - sent_at
        psutil.wait_procs(family, timeout=5)
        left = [f"{p.pid} {p.name()}" for p in family if p.is_running() and not _zombie(p)]
        output = (root / f"{name}.log").read_bytes()[size:].decode(errors="replace")
        (run_dir,) = (root / name).iterdir()
        stopped[name] = Stopped(run_dir, returncode, seconds, output, left)
    return stopped


def after_round(plan: str) -> int:
    """The round after which the signal is sent (once its record is in the metrics)."""
    return SIGNAL_AFTER + 1 if plan == "sigusr1-abandons" else SIGNAL_AFTER


def test_the_line_says_which_checkpoint_the_run_resumes_from(tmp_path):
    line = RunInterrupted.after_round(signal.SIGTERM, tmp_path, 4, 3).line
    assert line == (
        f"interrupted after round 4 (resumes from round 3's checkpoint): "
        f"resume with simfl run --resume {tmp_path}"
    )
    line = RunInterrupted.after_round(signal.SIGINT, tmp_path, 2, 0).line
    assert line.startswith("interrupted after round 2 (no checkpoint: resumes from the start)")
    line = RunInterrupted.after_round(signal.SIGUSR1, tmp_path, 0, 0).line
    assert line == f"interrupted before the first round: resume with simfl run --resume {tmp_path}"


def _zombie(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="module")
def stopped_runs(tmp_path_factory, tiny_cache) -> dict[str, Stopped]:
    return _signal_all(tmp_path_factory.mktemp("signals"), tiny_cache)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_cache, ray_runtime) -> pd.DataFrame:
    """The same scenario never interrupted (in this process: the metrics do not depend on it)."""
    from simfl.cli import invoke

    root = tmp_path_factory.mktemp("uninterrupted")
    assert invoke(["run", str(_write_scenario(root, "reference", tiny_cache))]) == 0
    (run_dir,) = (root / "reference").iterdir()
    return _metrics(run_dir)


def _metrics(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "metrics.parquet")
    return frame.drop(columns=[c for c in TIMING_COLUMNS if c in frame])


@pytest.mark.ray
@pytest.mark.parametrize("plan", list(PLANS))
def test_a_stop_signal_ends_the_run_cleanly_and_it_resumes_exactly(
    plan, stopped_runs, reference, cli
):
    run = stopped_runs[plan]
    expected_code = PLANS[plan][1]
    assert run.returncode == expected_code, run.output_after_signal
    assert run.seconds_to_exit < 10.0  # resources.stop_grace_s
    lines = [line for line in run.output_after_signal.splitlines() if line.strip()]
    assert len(lines) <= 3 and "Traceback" not in run.output_after_signal, lines
    last = int(lines[-1].split("after round ")[1].split()[0].rstrip(":"))
    # The round under way at the signal ends and is kept, unless it is abandoned: at the second
    # Ctrl-C if it is still running then, or at once (stop_grace_s = 0.001) if the signal finds
    # it still exchanging. Which round that is depends on this machine's load.
    assert after_round(plan) <= last < ROUNDS
    (checkpoint,) = (run.run_dir / "checkpoints").iterdir()  # the newest only
    resumes_after = int(checkpoint.name.split("-")[1])
    where = f"after round {last}"
    if resumes_after < last:  # abandoned, and no checkpoint after the last round kept
        assert plan == "sigusr1-abandons" and resumes_after % 3 == 0
        where += f" (resumes from round {resumes_after}'s checkpoint)"
    else:
        assert resumes_after == last
    assert lines[-1] == f"interrupted {where}: resume with simfl run --resume {run.run_dir}"
    assert run.processes_left == []
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["rounds_completed"] == last
    assert summary["interrupted_by"] == signal.Signals(PLANS[plan][0][0]).name
    assert summary["exit_code"] == expected_code

    resumed = cli("run", "--resume", str(run.run_dir))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming {run.run_dir} after round {resumes_after}" in resumed.stdout
    pd.testing.assert_frame_equal(_metrics(run.run_dir), reference, check_exact=True)
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["rounds_completed"] == ROUNDS
