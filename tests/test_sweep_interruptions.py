"""A real ``simfl sweep`` that loses a client actor in its first cell and is then sent SIGTERM
in its second: the first cell completes anyway, the second stops after its round with its
lease released and shows as interrupted; the same command then finishes it. Every cell ends
with exactly one ``DONE`` and one W&B run.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from cli_process import kill_a_busy_actor, start_simfl
from tiny_scenario import TINY

ROUNDS = 6  # room between seeing the second cell start and the signal landing in it
CELLS = "sweeps/*/cells/*/metrics.jsonl"


def _second_cell_started(results: Path) -> bool:
    running = [
        path
        for path in results.glob(CELLS)
        if not (path.parent / "DONE").exists() and len(path.read_text().splitlines()) >= 2
    ]
    return bool(list(results.glob("sweeps/*/cells/*/DONE"))) and bool(running)


@pytest.mark.ray
def test_a_sweep_survives_a_dead_actor_and_stops_cleanly_on_sigterm(
    tmp_path, tiny_cache, cli, ray_runtime
):
    results = tmp_path / "results"
    text = TINY.format(results=results, cache=tiny_cache).replace(
        "rounds = 2", f"rounds = {ROUNDS}"
    )
    path = tmp_path / "sweep.toml"
    path.write_text(text + "\n[sweep]\nseeds = [0, 1]\n")
    log = tmp_path / "sweep.log"
    with log.open("wb") as out:
        process = start_simfl("sweep", str(path), cwd=tmp_path, stdout=out, stderr=out)
    killer = kill_a_busy_actor(psutil.Process(process.pid), results, CELLS, 1)
    deadline = time.monotonic() + 300
    while not _second_cell_started(results) and time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        time.sleep(0.02)
    assert killer.killed is not None, "no client actor was caught running in the first cell"
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 143, log.read_text()
    output = log.read_text()
    assert "Traceback" not in output
    (sweep_dir,) = (results / "sweeps").iterdir()
    (interrupted,) = [d for d in sweep_dir.glob("cells/*") if not (d / "DONE").exists()]
    assert f"interrupted in cell {interrupted.name} after round " in output.splitlines()[-1]
    assert output.splitlines()[-1].endswith("resume with the same simfl sweep command")
    assert list(sweep_dir.glob("locks/*.LOCK")) == []  # the lease was released
    statuses = pd.read_parquet(sweep_dir / "index.parquet").set_index("cell_id")["status"]
    assert statuses[interrupted.name] == "interrupted" and sorted(statuses) == [
        "done",
        "interrupted",
    ]
    summary = json.loads((interrupted / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["interrupted_by"] == "SIGTERM"

    resumed = cli("sweep", str(path), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "ran 1, skipped 1" in resumed.stdout
    infrastructure = 0
    for cell_dir in sweep_dir.glob("cells/*"):
        assert (cell_dir / "DONE").is_file()
        run_id = (cell_dir / "wandb_run_id").read_text().strip()
        pieces = list((cell_dir / "wandb").glob("offline-run-*"))
        assert pieces and all(p.name.endswith(f"-{run_id}") for p in pieces)  # one W&B run
        rounds = pd.read_parquet(cell_dir / "metrics.parquet")["round"]
        assert list(rounds) == list(range(ROUNDS + 1))
        failures = json.loads((cell_dir / "failures.json").read_text() or "[]")
        infrastructure += sum(f["kind"] == "infrastructure" for f in failures)
    assert infrastructure == 1  # the first cell's dead actor, replaced
