"""bench/gpu_whisper_kws.py runs end to end (tiny, on CPU with a declared GPU) so that it is
ready for a GPU machine: every column of its table is filled, and the packing says that a
GPU's memory cannot be measured without CUDA."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_whisper_bench_cpu_smoke(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_whisper_kws.py"), "--cpu-smoke",
         "--precisions", "fp32", "bf16", "--budget-gib", "16",
         "--cache-dir", str(tmp_path / "cache"), "--json", str(tmp_path / "figures.json")],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "engine/plain" in done.stdout and "plain loop bf16 / fp32" in done.stdout
    assert done.stdout.count("cannot be measured") == 2  # one row per (precision, fraction)
    figures = json.loads((tmp_path / "figures.json").read_text())
    runs = figures["runs"]
    assert [(r["precision"], r["num_gpus"]) for r in runs] == [("fp32", 0.5), ("bf16", 0.5)]
    for run in runs:
        assert run["engine_round_s"] > 0 and run["plain_round_s"] > 0
        assert run["clients_per_gpu"] == run["clients_per_gpu_asked"] == 2
        assert run["concurrent_clients"] == 2  # 2 actors on the declared GPU
        assert run["client_peak_bytes"] is None  # no CUDA: not measured, and said so
        assert run["packing"]["line"] == (
            "num_gpus 0.5 packs 2 clients/GPU; one client's peak GPU memory cannot be "
            "measured (no CUDA device in this process), budget 16 GiB per GPU"
        )
