"""Reliability at quickstart size: resume after kill -9, and two sweep processes, one killed.

Usage: python bench/reliability_quickstart.py OUT_DIR [--rounds 10] [--kill-after 4]
       [--sweep-rounds 5] [--part resume|sweep|both]

Part ``resume``: for fedavg, fedadam and fedper, ``simfl run`` the quickstart for ``--rounds``
rounds uninterrupted; again, killed (``kill -9`` of its process group) once round
``--kill-after`` is checkpointed, then ``simfl run --resume``; compares ``metrics.parquet``
(timing columns aside) and prints wall times and the checkpoint's size and save time.

Part ``sweep``: a 6-cell quickstart sweep (seeds 0-5) run by two ``simfl sweep`` processes
started together; the first is killed with ``kill -9`` while it holds a cell half way (a
checkpoint written, no DONE) and restarted. Prints per cell: DONE markers, W&B run ids, rounds,
and the index's rows.
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
import torch

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
TIMING = ("round_seconds", "train_seconds", "evaluate_seconds", "central_eval_seconds")


def simfl(*args: str, cwd: Path, wait: bool = True):
    command = [sys.executable, "-m", "simfl.cli", *args]
    env = {**os.environ, "COLUMNS": "250"}
    if wait:
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, check=False, env=env
        )
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def metrics(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "metrics.parquet")
    return frame.drop(columns=[c for c in TIMING if c in frame])


def resume_part(out: Path, rounds: int, kill_after: int) -> None:
    for strategy in ("fedavg", "fedadam", "fedper"):
        results = out / "resume" / strategy
        common = [
            "--set",
            f"scenario.rounds={rounds}",
            "--set",
            f"strategy.name={strategy}",
            "--set",
            f"tracking.results_dir={results}",
            "--set",
            f"tracking.cache_dir={out / 'cache'}",
        ]
        started = time.perf_counter()
        reference = simfl("run", str(QUICKSTART), *common, cwd=out)
        reference_s = time.perf_counter() - started
        assert reference.returncode == 0, reference.stderr
        (reference_dir,) = results.iterdir()
        started = time.perf_counter()
        process = simfl("run", str(QUICKSTART), *common, cwd=out, wait=False)
        pattern = f"*/checkpoints/round-{kill_after:06d}/checkpoint.pt"
        while not [p for p in results.glob(pattern) if reference_dir not in p.parents]:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        killed_s = time.perf_counter() - started
        (killed_dir,) = [d for d in results.iterdir() if d != reference_dir]
        checkpoint = next(killed_dir.glob("checkpoints/round-*/checkpoint.pt"))
        checkpoint_bytes = checkpoint.stat().st_size  # removed when the resumed run completes
        payload = torch.load(checkpoint, weights_only=True)
        save_started = time.perf_counter()
        torch.save(payload, out / "checkpoint-timing.pt")
        save_s = time.perf_counter() - save_started
        started = time.perf_counter()
        resumed = simfl("run", "--resume", str(killed_dir), cwd=out)
        resumed_s = time.perf_counter() - started
        assert resumed.returncode == 0, resumed.stderr
        resumed_from = resumed.stdout.split("after round ")[1].split()[0]
        identical = metrics(killed_dir).equals(metrics(reference_dir))
        round_s = pd.read_parquet(reference_dir / "metrics.parquet")["round_seconds"][1:].mean()
        print(
            f"{strategy}: bit-identical={identical}; uninterrupted {reference_s:.1f} s; killed "
            f"after checkpoint {kill_after} at {killed_s:.1f} s, resumed after round "
            f"{resumed_from} in {resumed_s:.1f} s; checkpoint {checkpoint_bytes:,} "
            f"bytes (+ client state), saved in {save_s:.3f} s vs {round_s:.2f} s per round",
            flush=True,
        )


def sweep_part(out: Path, rounds: int) -> None:
    root = out / "sweep"
    root.mkdir(parents=True, exist_ok=True)
    text = QUICKSTART.read_text() + "\n[sweep]\nseeds = [0, 1, 2, 3, 4, 5]\n"
    path = root / "sweep.toml"
    path.write_text(text)
    base = [
        "sweep",
        str(path),
        "--wandb",
        "offline",
        "--set",
        f"scenario.rounds={rounds}",
        "--set",
        f"tracking.results_dir={root / 'results'}",
        "--set",
        f"tracking.cache_dir={out / 'cache'}",
    ]
    started = time.perf_counter()
    first, second = simfl(*base, cwd=root, wait=False), simfl(*base, cwd=root, wait=False)
    killed_cell = None
    while killed_cell is None:
        for lock in root.glob("results/sweeps/*/locks/*.LOCK"):
            try:
                owner = json.loads(lock.read_text())
            except (OSError, ValueError):
                continue
            cell = lock.parent.parent / "cells" / lock.name.removesuffix(".LOCK")
            done = list(cell.parent.glob("*/DONE"))
            if owner["pid"] == first.pid and done and list(cell.glob("checkpoints/round-*")):
                killed_cell = cell
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = time.perf_counter() - started
    restarted = simfl(*base, cwd=root, wait=False)
    restarted.wait()
    second.wait()
    wall = time.perf_counter() - started
    cells_dir = killed_cell.parent
    print(
        f"sweep: killed process 1 at {killed_at:.1f} s holding {killed_cell.name}; "
        f"exit codes: process 2 {second.returncode}, restarted {restarted.returncode}; "
        f"{wall:.1f} s in all"
    )
    for cell in sorted(cells_dir.iterdir()):
        run_id = (cell / "wandb_run_id").read_text().strip()
        pieces = sorted(p.name.rsplit("-", 1)[1] for p in cell.glob("wandb/offline-run-*"))
        rounds_seen = list(pd.read_parquet(cell / "metrics.parquet")["round"])
        print(
            f"  {cell.name}: DONE={len(list(cell.glob('DONE')))} W&B ids={sorted(set(pieces))} "
            f"(pieces {len(pieces)}, id file {run_id}) rounds unique="
            f"{len(rounds_seen) == len(set(rounds_seen))} ({len(rounds_seen)})"
            + (" <- killed and resumed" if cell == killed_cell else "")
        )
    index = pd.read_parquet(cells_dir.parent / "index.parquet")
    print(
        f"  index.parquet: {len(index)} rows, {index['cell_id'].nunique()} unique, "
        f"statuses {sorted(set(index['status']))}; locks left: "
        f"{len(list(cells_dir.parent.glob('locks/*.LOCK')))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--kill-after", type=int, default=4)
    parser.add_argument("--sweep-rounds", type=int, default=5)
    parser.add_argument("--part", choices=("resume", "sweep", "both"), default="both")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part in ("resume", "both"):
        resume_part(args.out, args.rounds, args.kill_after)
    if args.part in ("sweep", "both"):
        sweep_part(args.out, args.sweep_rounds)


if __name__ == "__main__":
    main()
