"""Sweeps: grid expansion and sharding (fast), then real sweeps through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_process import simfl, start_simfl
from test_end_to_end import TINY

from simfl.errors import ScenarioError
from simfl.sweep.grid import expand, parse_shard, seeds_override, shard_cells
from simfl.sweep.slurm import shard_from_slurm

ONE_ROUND = TINY.replace("rounds = 2", "rounds = 1")


def write_sweep(root: Path, grid: str, text: str = ONE_ROUND) -> Path:
    path = root / "sweep.toml"
    body = text.format(results=root / "results", cache=root.parent / "cache")
    path.write_text(body.replace('wandb_mode = "offline"', 'wandb_mode = "disabled"') + grid)
    return path


GRID = '\n[sweep]\n"partition.alpha" = [0.5, 1.0]\nseeds = [0, 1]\n'


def test_grid_expands_to_validated_cells_with_stable_ids(tmp_path):
    path = write_sweep(tmp_path, GRID)
    first, second = expand(path), expand(path)
    assert len(first.cells) == 4 and first.sweep_id == second.sweep_id
    assert [c.cell_id for c in first.cells] == [c.cell_id for c in second.cells]
    values = {(c.scenario.partition.alpha, c.scenario.scenario.seed) for c in first.cells}
    assert values == {(0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)}
    assert expand(path, ["train.lr=0.1"]).sweep_id != first.sweep_id
    more = expand(path, [seeds_override(path, [], 3)])  # --seeds 3: the same sweep, one seed more
    assert more.sweep_id == first.sweep_id and len(more.cells) == 6
    assert {c.cell_id for c in first.cells} < {c.cell_id for c in more.cells}
    assert seeds_override(path, [], 1) == "sweep.seeds=[0]"
    assert seeds_override(path, ["sweep.seeds=[7, 3]"], 4) == "sweep.seeds=[7, 3, 8, 9]"


def test_shards_cover_every_cell_exactly_once(tmp_path):
    cells = expand(write_sweep(tmp_path, GRID)).cells
    for count in (1, 2, 3, 4, 7):
        shards = [shard_cells(cells, i, count) for i in range(1, count + 1)]
        ids = [c.cell_id for shard in shards for c in shard]
        assert sorted(ids) == sorted(c.cell_id for c in cells)
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"}
    assert shard_from_slurm(env) == (4, 4) and shard_from_slurm({}) is None


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ('\n[sweep]\n"strategy.nmae" = ["fedavg"]\n', "unknown key 'strategy.nmae'"),
        (
            '\n[sweep]\n"partition.alpha" = []\n',
            "key 'sweep.partition.alpha': expected a non-empty",
        ),
        ('\n[sweep]\n"partition.alpha" = [0.5, "lots"]\n', "partition.alpha"),
        ("\n", "no [sweep] table"),
    ],
)
def test_bad_sweeps_are_rejected_before_any_cell_runs(tmp_path, grid, message):
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[")):
        expand(write_sweep(tmp_path, grid))


@pytest.mark.parametrize("spec", ["3/2", "0/2", "1/0", "a/b", "2"])
def test_bad_shard_specs(spec):
    with pytest.raises(ScenarioError, match="--shard"):
        parse_shard(spec)


def test_bad_sweep_via_cli_exits_2_and_writes_nothing(tmp_path, cli):
    path = write_sweep(tmp_path, '\n[sweep]\n"partition.alpha" = [0.5, -1.0]\n')
    done = cli("sweep", str(path), cwd=tmp_path)
    assert done.returncode == 2 and "partition.alpha" in done.stderr
    assert not (tmp_path / "results").exists()
    bad_shard = cli("sweep", str(write_sweep(tmp_path, GRID)), "--shard", "3/2", cwd=tmp_path)
    assert bad_shard.returncode == 2 and "--shard" in bad_shard.stderr


def _sweep_dir(root: Path) -> Path:
    (directory,) = (root / "results" / "sweeps").iterdir()
    return directory


def _done_markers(sweep_dir: Path) -> dict[str, str]:
    return {p.parent.name: p.read_text() for p in sweep_dir.glob("cells/*/DONE")}


@pytest.mark.ray
def test_sharded_sweep_resumes_and_reports(tmp_path, cli, ray_runtime):
    path = write_sweep(tmp_path, GRID)
    for shard in ("1/2", "2/2"):
        done = cli("sweep", str(path), "--shard", shard, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
    sweep_dir = _sweep_dir(tmp_path)
    markers = _done_markers(sweep_dir)
    assert len(markers) == 4
    again = cli("sweep", str(path), cwd=tmp_path)  # everything done: nothing reruns
    assert again.returncode == 0 and "ran 0, skipped 4" in again.stdout
    assert _done_markers(sweep_dir) == markers
    index = pd.read_parquet(sweep_dir / "index.parquet")
    assert sorted(index["status"]) == ["done"] * 4 and index["cell_id"].is_unique
    status = cli("sweep", str(path), "--status", cwd=tmp_path)
    assert status.returncode == 0 and status.stdout.count("done") >= 4
    report = cli("report", str(sweep_dir), "--target", "0.05", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    html = (sweep_dir / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2  # accuracy curves and accuracy vs alpha
    table = pd.read_csv(sweep_dir / "report" / "comparison.csv")
    assert len(table) == 2 and (table["seeds"] == 2).all()
    assert "All 4 cells are complete" in (sweep_dir / "report" / "report.md").read_text()

    extended = cli("sweep", str(path), "--seeds", "3", cwd=tmp_path)  # only the new seed runs
    assert extended.returncode == 0 and "ran 2, skipped 4" in extended.stdout
    assert _sweep_dir(tmp_path) == sweep_dir and _done_markers(sweep_dir).items() >= markers.items()
    report = cli("report", str(sweep_dir), "--target", "0.05", cwd=tmp_path)
    table = pd.read_csv(sweep_dir / "report" / "comparison.csv")
    assert report.returncode == 0 and (table["seeds"] == 3).all()


@pytest.mark.ray
def test_kill_9_mid_cell_then_resume_runs_each_cell_once(tmp_path, cli, ray_runtime):
    path = write_sweep(tmp_path, "\n[sweep]\nseeds = [0, 1]\n", TINY)
    process = start_simfl("sweep", str(path), cwd=tmp_path)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:  # wait until one cell is done and the next has begun
            cells = tmp_path / "results" / "sweeps"
            done = list(cells.glob("*/cells/*/DONE"))
            running = [
                p for p in cells.glob("*/cells/*/metrics.jsonl") if not (p.parent / "DONE").exists()
            ]
            if done and running:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the sweep never got into its second cell")
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the whole machine dies: driver and Ray with it
        process.wait()
    sweep_dir = _sweep_dir(tmp_path)
    before = _done_markers(sweep_dir)
    resumed = cli("sweep", str(path), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = _done_markers(sweep_dir)
    assert len(after) == 2
    assert all(after[cell] == marker for cell, marker in before.items())  # done cells not rerun
    assert f"ran {2 - len(before)}, skipped {len(before)}" in resumed.stdout
    index = pd.read_parquet(sweep_dir / "index.parquet")
    assert sorted(index["status"]) == ["done"] * 2 and index["cell_id"].is_unique
    for cell_dir in sweep_dir.glob("cells/*"):
        summary = json.loads((cell_dir / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert len(pd.read_parquet(cell_dir / "metrics.parquet")) == 3  # rounds 0..2, no duplicates


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sweep_joins_an_existing_ray_cluster(tmp_path):
    """A local head node that this test starts and stops by PID (never `ray stop`)."""
    port = _free_port()
    ray_tmp = tempfile.mkdtemp(prefix="simfl-ray-", dir="/tmp")
    ray_bin = Path(sys.executable).parent / "ray"
    head = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--temp-dir={ray_tmp}",  # short: Ray's socket paths must stay under 107 bytes
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None, head.stdout.read()
            time.sleep(0.5)
        time.sleep(2)
        path = write_sweep(tmp_path, "\n[sweep]\nseeds = [0, 1]\n")
        done = simfl("sweep", str(path), "--ray-address", f"127.0.0.1:{port}", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(_done_markers(_sweep_dir(tmp_path))) == 2
        assert head.poll() is None  # the cluster outlives the sweep that joined it
    finally:
        _stop_group(head)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the process group we started (ray start --block stops its own daemons)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
