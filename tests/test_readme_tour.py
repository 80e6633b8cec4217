"""Every command of the README's tour runs, as written, at the tiny scenario's size.

The commands are read from the README itself (its first ``bash`` block under "A five-minute
tour"); each ``simfl run``, ``partition`` and ``sweep`` gets ``--set`` overrides appended that
shrink the data to the tiny dataset and the rounds to one, and ``<sweep-id>`` becomes the sweep
the tour's sweep wrote. A tour command that stops working fails here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from tiny_scenario import tiny_raw

ROOT = Path(__file__).resolve().parents[1]
SHRINKS = ("run", "partition", "sweep")


def tour_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    tour = text[text.index("## A five-minute tour") :]
    block = re.search(r"```bash\n(.*?)```", tour, re.S)
    assert block is not None, "the README's tour has no bash block"
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    return [shlex.split(line) for line in lines if line]


def tiny_overrides(cache: Path) -> list[str]:
    """``--set`` pairs that turn the quickstart-sized scenarios into the tiny one."""
    raw = tiny_raw(Path("unused"), cache)
    words = ", ".join(f'"{word}"' for word in raw["data"]["synth"]["words"])
    values = {
        **{f"data.synth.{k}": v for k, v in raw["data"]["synth"].items() if k != "words"},
        "data.synth.words": f"[{words}]",
        "data.num_clients": raw["data"]["num_clients"],
        "data.local_test_fraction": raw["data"]["local_test_fraction"],
        "partition.min_size": raw["partition"]["min_size"],
        "strategy.min_train_nodes": 2,
        "strategy.min_evaluate_nodes": 2,
        "strategy.min_available_nodes": raw["strategy"]["min_available_nodes"],
        "scenario.rounds": 1,
        "tracking.cache_dir": str(cache),
        "tracking.wandb_mode": "disabled",
    }
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


@pytest.mark.ray
def test_every_tour_command_runs(tmp_path, tiny_cache, ray_runtime, cli):
    commands = tour_commands()
    assert [c[:2] for c in commands] == [
        [".venv/bin/simfl", "run"],
        [".venv/bin/simfl", "run"],
        [".venv/bin/simfl", "partition"],
        [".venv/bin/simfl", "sweep"],
        [".venv/bin/simfl", "report"],
    ]
    sweeps = tmp_path / "results" / "sweeps"
    for command in commands:
        args = [str(ROOT / a) if a.startswith("scenarios/") else a for a in command[1:]]
        if "<sweep-id>" in " ".join(args):
            (sweep,) = sweeps.iterdir()
            args = [a.replace("results/sweeps/<sweep-id>", str(sweep)) for a in args]
        if args[0] in SHRINKS:
            args += tiny_overrides(tiny_cache)
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    runs = [p for p in (tmp_path / "results").iterdir() if p.name.startswith("quickstart-")]
    assert len(runs) == 2 and (tmp_path / "partition.png").stat().st_size > 0
    (sweep,) = sweeps.iterdir()
    assert len(list((sweep / "cells").iterdir())) == 12
    assert (sweep / "report" / "report.html").exists()
