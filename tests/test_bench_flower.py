"""``simfl bench flower`` runs end to end at a tiny size: the bare torch loop, stock Flower's
run_simulation and simfl's engine each finish their rounds and report them, so the peer
comparison is ready to be recorded at full size."""

from __future__ import annotations

import json

from tests.cli_process import simfl


def test_bench_flower_tiny(tmp_path):
    figures_file = tmp_path / "figures.json"
    done = simfl(
        "bench", "flower", "--clients", "6", "--samples", "20", "--per-round", "2",
        "--rounds", "2", "--test-samples", "50", "--workdir", str(tmp_path / "work"),
        "--json", str(figures_file),
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(figures_file.read_text())
    peers = ("bare", "flower", "simfl")
    for peer in peers:
        assert figures[f"{peer}_seconds_per_round"] > 0, peer
        assert figures[f"{peer}_peak_rss_mib"] > 0, peer
        assert len(figures[f"{peer}_rounds_s"].split()) == 2, peer
    assert figures["rounds_run"] == {peer: 2 for peer in peers}
    for ratio in ("simfl_over_flower", "simfl_over_bare", "flower_over_bare"):
        assert figures[ratio] > 0, ratio
