"""Interruptions at quickstart size: kill -9 and resume for every kind of run, stop signals,
and a client actor killed mid-round, each against the same run never interrupted.

Usage: python bench/interruptions_quickstart.py OUT_DIR [--rounds 5] [--part resume|signals|both]

Part ``resume``: for central DP, local DP-SGD, SecAgg+, one stragglers cell (over-selection
0.3, 60 s deadline) and FedBuff (the ``systems-async`` cell), ``simfl run`` uninterrupted; again,
killed (``kill -9`` of its process group) once round 2 is checkpointed, then ``simfl run
--resume``; ``metrics.parquet`` compared (timing columns aside, exactly).

Part ``signals``: the quickstart sent SIGTERM, SIGINT and SIGUSR1 after round 2, and a run
whose busy client actor is killed with ``kill -9`` in round 3; prints the exit code, the
seconds from the signal to the exit, the lines printed after it, the processes left, and
whether the resumed (or surviving) run's metrics equal the uninterrupted run's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from cli_process import kill_a_busy_actor  # noqa: E402

TIMING = (
    "round_seconds",
    "train_seconds",
    "evaluate_seconds",
    "central_eval_seconds",
    "secagg_seconds",  # SecAgg+'s protocol wall time
)
FEDBUFF = (
    'strategy={ name = "fedbuff", concurrency = 10, buffer_size = 5, fraction_evaluate = 0.0, '
    "min_evaluate_nodes = 0, min_available_nodes = 20 }"
)
RESUMED_KINDS = {
    "privacy-central-dp": ["scenarios/privacy-central-dp.toml"],
    "privacy-local-dp": ["scenarios/privacy-local-dp.toml"],
    "privacy-secagg": ["scenarios/privacy-secagg.toml"],
    "systems-stragglers": [
        "scenarios/systems-stragglers.toml",
        *("--set", "systems.over_selection=0.3", "--set", "systems.deadline_s=60.0"),
    ],
    "systems-async": ["scenarios/systems-async.toml", "--set", FEDBUFF],
}
ROUND_2 = "*/checkpoints/round-000002/checkpoint.pt"
ENV = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", "FLWR_TELEMETRY_ENABLED": "0"}


def start(args: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "simfl.cli", *args],
            cwd=ROOT,
            env=ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run(args: list[str], log: Path) -> tuple[int, float]:
    began = time.monotonic()
    code = start(args, log).wait()
    return code, time.monotonic() - began


def only_run(results: Path) -> Path:
    (run_dir,) = [d for d in results.iterdir() if d.is_dir()]
    return run_dir


def same_metrics(a: Path, b: Path) -> str:
    frames = [pd.read_parquet(d / "metrics.parquet") for d in (a, b)]
    frames = [f.drop(columns=[c for c in TIMING if c in f]) for f in frames]
    try:
        pd.testing.assert_frame_equal(*frames, check_exact=True)
    except AssertionError as error:
        return "NO: " + str(error).splitlines()[0]
    return f"yes ({len(frames[0])} rows)"


def wait_for(condition, process: subprocess.Popen, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the run ended (or stalled) before it could be interrupted")
        time.sleep(0.02)


def settings(results: Path, rounds: int) -> list[str]:
    return [
        *("--set", f"scenario.rounds={rounds}", "--set", f"tracking.results_dir={results}"),
        *("--set", "tracking.wandb_mode=offline"),
    ]


def resume_part(out: Path, rounds: int) -> None:
    print("| run | reference s | killed after | resumed from | resume s | bit-identical |")
    print("|---|---|---|---|---|---|")
    for name, args in RESUMED_KINDS.items():
        base = out / "resume" / name
        reference, killed = base / "reference", base / "killed"
        code, seconds = run(["run", *args, *settings(reference, rounds)], base.with_suffix(".ref"))
        assert code == 0, (base.with_suffix(".ref")).read_text()[-2000:]
        process = start(["run", *args, *settings(killed, rounds)], base.with_suffix(".kill"))
        wait_for(lambda killed=killed: bool(list(killed.glob(ROUND_2))), process)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        run_dir = only_run(killed)
        code, resume_s = run(["run", "--resume", str(run_dir)], base.with_suffix(".resume"))
        text = base.with_suffix(".resume").read_text()
        assert code == 0, text[-2000:]
        after = text.split("after round ")[1].split()[0]
        same = same_metrics(run_dir, only_run(reference))
        print(f"| {name} | {seconds:.0f} | 2 | {after} | {resume_s:.0f} | {same} |", flush=True)


def metric_lines(results: Path) -> int:
    files = list(results.glob("*/metrics.jsonl"))
    return len(files[0].read_text().splitlines()) if files else 0


def signals_part(out: Path, rounds: int) -> None:
    quickstart = ["scenarios/quickstart.toml"]
    reference = out / "signals" / "reference"
    code, seconds = run(["run", *quickstart, *settings(reference, rounds)], out / "reference.log")
    assert code == 0
    print(f"uninterrupted quickstart, {rounds} rounds: {seconds:.0f} s")
    print("| stop | exit code | s to exit | lines after | processes left | resumed after | same |")
    print("|---|---|---|---|---|---|---|")
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        name = signal.Signals(signum).name
        results, log = out / "signals" / name, out / "signals" / f"{name}.log"
        process = start(["run", *quickstart, *settings(results, rounds)], log)
        wait_for(lambda results=results: metric_lines(results) >= 3, process)
        family = psutil.Process(process.pid).children(recursive=True)
        size, sent = log.stat().st_size, time.monotonic()
        os.kill(process.pid, signum)
        code = process.wait()
        to_exit = time.monotonic() - sent
        _, alive = psutil.wait_procs(family, timeout=5)
        after = [line for line in log.read_bytes()[size:].decode().splitlines() if line.strip()]
        run_dir = only_run(results)
        resumed = out / "signals" / f"{name}.resume.log"
        assert run(["run", "--resume", str(run_dir)], resumed)[0] == 0
        point = resumed.read_text().split("after round ")[1].split()[0]
        same = same_metrics(run_dir, only_run(reference))
        row = [name, code, f"{to_exit:.1f}", len(after), len(alive), point, same]
        print("| " + " | ".join(map(str, row)) + " |")
    actor_kill(out, rounds, quickstart, reference)


def actor_kill(out: Path, rounds: int, quickstart: list[str], reference: Path) -> None:
    results, log = out / "signals" / "actor-kill", out / "signals" / "actor-kill.log"
    process = start(["run", *quickstart, *settings(results, rounds)], log)
    killer = kill_a_busy_actor(psutil.Process(process.pid), results, "*/metrics.jsonl", 2)
    code = process.wait()
    killer.join()
    run_dir = only_run(results)
    failures = json.loads((run_dir / "failures.json").read_text())
    kinds = [f"round {f['round']} {f['kind']}" for f in failures]
    same = same_metrics(run_dir, only_run(reference))
    print(f"actor kill -9 (pid {killer.killed}): exit {code}; failures.json {kinds}; same: {same}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--part", choices=("resume", "signals", "both"), default="both")
    options = parser.parse_args()
    if options.part in ("signals", "both"):
        signals_part(options.out, options.rounds)
    if options.part in ("resume", "both"):
        resume_part(options.out, options.rounds)


if __name__ == "__main__":
    main()
