"""A real Flower/Ray simulation through ``simfl run`` on the tiny extracted-archive fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from speech_commands_fixture import SPEAKERS, make_archive
from tiny_scenario import tiny_raw

from simfl.config import load_scenario
from simfl.data.prepare import prepare_data


def archive_scenario(root: Path, archive: Path) -> str:
    """The tiny scenario, on the archive's 8 speakers split two per client, every client
    training each round."""
    raw = tiny_raw(root / "results", root / "cache")
    del raw["data"]["synth"]
    raw["scenario"] |= {"name": "tiny-speech-commands", "seed": 1}
    raw["data"] |= {"dataset": "speech-commands", "path": str(archive)}
    raw["partition"] = {"kind": "speaker-groups", "group_size": 2}
    raw["strategy"]["fraction_train"] = 1.0
    raw["tracking"]["wandb_mode"] = "disabled"
    return tomli_w.dumps(raw)


@pytest.mark.ray
def test_simfl_run_on_the_archive_layout(tmp_path: Path, cli, ray_runtime) -> None:
    archive = make_archive(tmp_path / "speech_commands_v0.02")
    scenario = tmp_path / "sc.toml"
    scenario.write_text(archive_scenario(tmp_path, archive))
    done = cli("run", str(scenario), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "results").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["rounds_completed"] == 2
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    assert list(metrics["round"]) == [0, 1, 2]
    assert (metrics["clients_succeeded"].iloc[1:] == 4).all()
    partition = pd.read_csv(run_dir / "partition.csv")
    assert len(partition) == 4 and (partition["num_speakers"] == 2).all()
    loaded = load_scenario(scenario)
    train = prepare_data(loaded.data, Path(loaded.tracking.cache_dir)).train
    assert partition["size"].sum() == len(train.rows) and len(SPEAKERS.train) == 8
