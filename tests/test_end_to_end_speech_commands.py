"""A real Flower/Ray simulation through ``simfl run`` on the tiny extracted-archive fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from speech_commands_fixture import SPEAKERS, make_archive

SCENARIO = """
[scenario]
name = "tiny-speech-commands"
seed = 1
rounds = 2

[data]
dataset = "speech-commands"
path = "{path}"
view = "12-class"
num_clients = 4
local_test_fraction = 0.25

[partition]
kind = "speaker-groups"
group_size = 2

[model]
name = "kws-cnn"

[train]
batch_size = 8
lr = 0.05

[strategy]
name = "fedavg"
fraction_train = 1.0
fraction_evaluate = 1.0
min_train_nodes = 2
min_evaluate_nodes = 2
min_available_nodes = 4

[tracking]
results_dir = "{root}/results"
cache_dir = "{root}/cache"
wandb_mode = "disabled"
"""


@pytest.mark.ray
def test_simfl_run_on_the_archive_layout(tmp_path: Path, cli, ray_runtime) -> None:
    path = make_archive(tmp_path / "speech_commands_v0.02")
    scenario = tmp_path / "sc.toml"
    scenario.write_text(SCENARIO.format(path=path, root=tmp_path))
    done = cli("run", str(scenario), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "results").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["rounds_completed"] == 2
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    assert list(metrics["round"]) == [0, 1, 2]
    assert (metrics["clients_succeeded"].iloc[1:] == 4).all()
    assert metrics["central_accuracy"].between(0, 1).all()
    partition = pd.read_csv(run_dir / "partition.csv")
    assert len(partition) == 4 and (partition["num_speakers"] == 2).all()
    assert partition["size"].sum() > 0 and len(SPEAKERS.train) == 8
