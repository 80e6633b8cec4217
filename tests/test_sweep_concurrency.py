"""Sweeps shared by several processes, killed and restarted: every cell runs exactly once.

Real ``simfl sweep`` processes (each with its own Ray runtime) on the tiny end-to-end scenario.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_process import start_simfl
from test_end_to_end import TINY

from simfl.sweep.grid import expand
from simfl.sweep.lease import read_owner
from simfl.sweep.store import SweepStore, sweep_root

SEEDS = "\n[sweep]\nseeds = [0, 1, 2, 3]\n"


def _sweep_file(root: Path, grid: str, rounds: int, wandb: str) -> Path:
    text = TINY.format(results=root / "results", cache=root.parent / "cache")
    text = text.replace("rounds = 2", f"rounds = {rounds}")
    text = text.replace('wandb_mode = "offline"', f'wandb_mode = "{wandb}"')
    path = root / "sweep.toml"
    path.write_text(text + grid)
    return path


def _start(path: Path) -> subprocess.Popen:
    return start_simfl(
        "sweep",
        str(path),
        cwd=path.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _cells(root: Path) -> Path:
    (sweep_dir,) = (root / "results" / "sweeps").iterdir()
    return sweep_dir / "cells"


def _held_by(cells: Path, pid: int) -> list[str]:
    """Cells whose lease ``pid`` holds and that have a checkpoint but no DONE yet."""
    held = []
    for lock in cells.parent.glob("locks/*.LOCK"):
        owner = read_owner(lock)
        cell = cells / lock.name.removesuffix(".LOCK")
        mid_run = list(cell.glob("checkpoints/round-*/checkpoint.pt"))
        if owner and owner.pid == pid and mid_run and not (cell / "DONE").exists():
            held.append(cell.name)
    return held


def test_two_processes_one_killed_and_restarted_run_each_cell_once(tmp_path):
    path = _sweep_file(tmp_path, SEEDS, rounds=1, wandb="offline")
    first, second = _start(path), _start(path)
    seen_done: dict[str, str] = {}  # the DONE marker of each cell as first seen
    killed_cell = None
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline and first.poll() is None:
            if (tmp_path / "results" / "sweeps").exists():
                cells = _cells(tmp_path)
                for marker in cells.glob("*/DONE"):
                    seen_done.setdefault(marker.parent.name, marker.read_text())
                held = _held_by(cells, first.pid)
                if seen_done and held:  # half way: cells done, one of ours mid-run
                    killed_cell = held[0]
                    break
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert killed_cell is not None, "the first process never got half way"
    restarted = _start(path)
    while restarted.poll() is None or second.poll() is None:
        for marker in _cells(tmp_path).glob("*/DONE"):
            seen_done.setdefault(marker.parent.name, marker.read_text())
        assert time.monotonic() < deadline, "the sweep did not finish"
        time.sleep(0.2)
    for process in (restarted, second):
        output = process.stdout.read()
        assert process.returncode == 0, output

    cells = _cells(tmp_path)
    assert sorted(p.parent.name for p in cells.glob("*/DONE")) == sorted(seen_done)
    assert len(seen_done) == 4
    for cell, marker in seen_done.items():
        assert (cells / cell / "DONE").read_text() == marker  # never run a second time
    for cell_dir in cells.iterdir():
        summary = json.loads((cell_dir / "summary.json").read_text())
        assert summary["status"] == "completed"
        metrics = pd.read_parquet(cell_dir / "metrics.parquet")
        assert list(metrics["round"]) == [0, 1]
        run_id = (cell_dir / "wandb_run_id").read_text().strip()
        pieces = list((cell_dir / "wandb").glob("offline-run-*"))
        assert pieces and all(p.name.endswith(f"-{run_id}") for p in pieces)  # one W&B run
        assert len(pieces) == (2 if cell_dir.name == killed_cell else 1)
    assert not list(cells.parent.glob("locks/*.LOCK"))
    index = pd.read_parquet(cells.parent / "index.parquet")
    assert len(index) == 4 and index["cell_id"].is_unique
    assert (index["status"] == "done").all()


@pytest.mark.ray
def test_a_foreign_hosts_lock_is_taken_over_after_its_lease_and_the_cell_runs(
    tmp_path, cli, ray_runtime
):
    path = _sweep_file(tmp_path, "\n[sweep]\nseeds = [0, 1]\n", rounds=1, wandb="disabled")
    sweep = expand(path)
    store = SweepStore(sweep_root(sweep.cells[0].scenario.tracking.results_dir, sweep))
    first = sweep.cells[0]
    lock = store.lock_path(first)
    lock.parent.mkdir(parents=True)  # results/sweeps/<id>/locks/
    owner = {
        "token": "f0reign",
        "host": "node-preempted-elsewhere",  # a host we cannot ask whether the owner lives
        "pid": 4242,
        "renewed_at": time.time(),
        "lease_s": 1.0,
    }
    lock.write_text(json.dumps(owner))
    assert store.status(first) == "running"  # live until its lease ends
    time.sleep(1.5)  # the owner never renews: preempted
    done = cli("sweep", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ran 2, skipped 0" in done.stdout  # the expired lease is taken over
    assert all(store.is_done(cell) for cell in sweep.cells)
    assert not lock.exists()
