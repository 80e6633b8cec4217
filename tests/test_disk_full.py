"""A disk that fills up mid-run: one line, exit code 2, the last checkpoint intact, and a resume
once there is room that ends exactly like a run that never stopped.

The disk fills for real: once round 1 is checkpointed, the test lowers the file-size limit
(``RLIMIT_FSIZE``, by ``prlimit``) of the running ``simfl`` process to half a checkpoint, so
its next checkpoint fails with EFBIG while every smaller file still fits. The limit cannot be
set when the child starts: Ray's processes would inherit it and fail to start (their object
store is one large file). FedAdam's server moments make a checkpoint (~100 KB) larger than every
other file written after round 1 (the metrics tables, ~17 KB), so what fails is a checkpoint.
"""

from __future__ import annotations

import json
import re
import resource
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_process import start_simfl
from tiny_scenario import tiny_text

from simfl.engine.checkpoint import load_checkpoint
from simfl.engine.records import TIMING_COLUMNS

pytestmark = pytest.mark.skipif(
    not hasattr(resource, "prlimit"), reason="prlimit (Linux) lowers a running process's limits"
)

ROUNDS = 4


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_cache) -> Path:
    root = tmp_path_factory.mktemp("disk-full")
    text = tiny_text(root / "results", tiny_cache).replace("rounds = 2", f"rounds = {ROUNDS}")
    text = text.replace('name = "fedavg"', 'name = "fedadam"')
    (root / "tiny.toml").write_text(text.replace('"offline"', '"disabled"'))  # W&B: not tested
    return root


@pytest.fixture(scope="module")
def reference(workspace: Path, ray_runtime) -> Path:
    """The run never interrupted, in this process on the session's Ray runtime."""
    from simfl.cli import invoke

    results = workspace / "reference"
    scenario = workspace / "tiny.toml"
    assert invoke(["run", str(scenario), "--set", f"tracking.results_dir={results}"]) == 0
    (run_dir,) = results.iterdir()
    return run_dir


def _metrics(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "metrics.parquet")
    return frame.drop(columns=[c for c in TIMING_COLUMNS if c in frame])


def _fill_disk_after_round_1(root: Path, checkpoints: str, *args: str) -> tuple[int, str, str]:
    """Start ``simfl ARGS``; once a checkpoint matching ``checkpoints`` (a glob under ``root``)
    is published, limit the process's files to half its size. Exit code, stdout and stderr."""
    out, err = root / "stdout.txt", root / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = start_simfl(*args, cwd=root, stdout=stdout, stderr=stderr)
        try:
            _limit_after(process, root, checkpoints)
            code = process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return code, out.read_text(), err.read_text()


def _limit_after(process, root: Path, checkpoints: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if found := list(root.glob(checkpoints)):
            half = found[0].stat().st_size // 2
            resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (half, half))
            return
        assert process.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.02)
    pytest.fail("round 1 was never checkpointed")


def _leftovers(run_dir: Path) -> list[str]:
    """Temporaries, staging or pending directories: what a half-done write would leave."""
    return [
        str(p.relative_to(run_dir))
        for p in run_dir.rglob("*")
        if p.name.startswith((".", "pending-")) or ".tmp" in p.name
    ]


@pytest.mark.ray
def test_a_disk_full_mid_run_is_one_line_and_the_run_resumes_exactly(workspace, reference, cli):
    results = workspace / "results"
    code, _, stderr = _fill_disk_after_round_1(
        workspace, "results/*/checkpoints/round-000001/checkpoint.pt", "run", "tiny.toml"
    )
    (run_dir,) = results.iterdir()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in stderr, stderr
    failed = int(re.search(r"round-(\d+)/checkpoint\.pt", lines[0]).group(1))
    assert lines[0] == (
        f"error: cannot write {run_dir}/checkpoints/round-{failed:06d}/checkpoint.pt: "
        "[Errno 27] File too large (EFBIG); raise the file-size limit (ulimit -f) and resume "
        f"with simfl run --resume {run_dir}"
    )
    # The checkpoint before the failed one is intact; nothing half-written is in place.
    (kept,) = (run_dir / "checkpoints").iterdir()
    assert load_checkpoint(kept, str(run_dir)).server_round == failed - 1 >= 1
    assert _leftovers(run_dir) == []
    text = (run_dir / "metrics.jsonl").read_text()
    assert text.endswith("\n") and [json.loads(line)["round"] for line in text.splitlines()] == (
        list(range(failed + 1))  # the failed round's record was complete; it is run again
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "File too large (EFBIG)" in summary["error"]

    resumed = cli("run", "--resume", str(run_dir), cwd=workspace)  # room again: no limit here
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"after round {failed - 1}" in resumed.stdout
    pd.testing.assert_frame_equal(_metrics(run_dir), _metrics(reference), check_exact=True)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert _leftovers(run_dir) == []


SWEEP = '\n[sweep]\n"train.lr" = [0.05, 0.1]\n'  # one partition: its cache is already built


@pytest.mark.ray
def test_a_disk_full_in_a_sweep_fails_its_cells_in_one_line_and_releases_them(
    workspace, reference, cli
):
    root = workspace / "sweep"
    root.mkdir()
    text = (workspace / "tiny.toml").read_text().replace(str(workspace / "results"), "results")
    (root / "sweep.toml").write_text(text.replace(f"rounds = {ROUNDS}", "rounds = 2") + SWEEP)
    code, stdout, stderr = _fill_disk_after_round_1(
        root, "results/sweeps/*/cells/*/checkpoints/round-000001/checkpoint.pt", "sweep",
        "sweep.toml",
    )  # fmt: skip
    assert code == 1 and "Traceback" not in stderr, stdout + stderr
    (sweep_dir,) = (root / "results" / "sweeps").iterdir()
    reported = " ".join(stdout.split())  # the console wraps long lines
    # The running cell fails at its next checkpoint; the sweep goes on, and the next cell
    # fails as it starts (its partition figure no longer fits). Both leases are released.
    assert reported.count("failed: ResultsWriteError: cannot write") == 2, stdout
    assert re.search(r"round-000002/checkpoint\.pt: \[Errno 27\] File too large", reported)
    assert "partition.png: [Errno 27]" in reported
    assert "resume with the same simfl sweep command" in reported
    assert list((sweep_dir / "locks").glob("*.LOCK")) == []
    assert all(_leftovers(cell) == [] for cell in sweep_dir.glob("cells/*"))

    again = cli("sweep", str(root / "sweep.toml"), cwd=root)
    assert again.returncode == 0 and "ran 2, skipped 0" in again.stdout, again.stdout
    index = pd.read_parquet(sweep_dir / "index.parquet")
    assert list(index["status"]) == ["done", "done"]
