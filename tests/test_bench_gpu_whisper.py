"""bench/gpu_whisper_kws.py runs end to end (tiny, on CPU) so it is ready for a GPU machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_whisper_bench_cpu_smoke(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_whisper_kws.py"), "--cpu-smoke",
         "--cache-dir", str(tmp_path / "cache"), "--json", str(tmp_path / "figures.json")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seconds per round" in done.stdout and "clients fit in" in done.stdout
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["client_peak_bytes"] > 0 and figures["runs"][0]["mean_round_s"] > 0
