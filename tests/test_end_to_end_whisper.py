"""Real Flower/Ray simulations of whisper-kws and whisper-asr on tiny synthesized data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_end_to_end import run_dirs

COMMON = """
[strategy]
name = "fedavg"
fraction_train = 1.0
fraction_evaluate = 1.0
min_train_nodes = 3
min_evaluate_nodes = 3
min_available_nodes = 3

[tracking]
results_dir = "{results}"
cache_dir = "{cache}"
wandb_mode = "offline"
"""

KWS = """
[scenario]
name = "tiny-whisper-kws"
seed = 1
rounds = 2

[data]
dataset = "synth-commands"
view = "12-class"
num_clients = 3
local_test_fraction = 0.25

[data.synth]
words = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "cat"]
num_speakers = 8
takes_per_speaker = 1
silence_clips_per_speaker = 1
test_speaker_fraction = 0.25

[data.features]
kind = "whisper"
frames = 100

[partition]
kind = "speaker-groups"
group_size = 2

[model]
name = "whisper-kws"
config_preset = "test-small"
init_std = 0.1
head_channels = 4

[train]
batch_size = 8
optimizer = "adam"
lr = 0.003
"""

ASR = """
[scenario]
name = "tiny-whisper-asr"
seed = 1
rounds = 2

[data]
dataset = "synth-phrases"
num_clients = 3
local_test_fraction = 0.25

[data.synth]
phrases = ["turn left", "go up", "stop now"]
digit_strings = 2
num_speakers = 8
test_speaker_fraction = 0.25
clip_seconds = 2.0

[data.features]
kind = "whisper"
frames = 200

[partition]
kind = "speaker-groups"
group_size = 2

[model]
name = "whisper-asr"
config_preset = "test-small"
input_frames = 200
train_all = true
max_target_tokens = 6

[train]
batch_size = 8
optimizer = "adam"
lr = 0.003
"""


def run(tmp_path: Path, body: str, cli) -> tuple[pd.DataFrame, dict]:
    text = body + COMMON.format(results=tmp_path / "results", cache=tmp_path / "cache")
    (tmp_path / "scenario.toml").write_text(text)
    done = cli("run", str(tmp_path / "scenario.toml"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = run_dirs(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    return pd.read_parquet(run_dir / "metrics.parquet"), summary


@pytest.mark.ray
def test_whisper_kws_federated_run_sends_only_the_head(tmp_path, cli, ray_runtime):
    metrics, summary = run(tmp_path, KWS, cli)
    assert summary["status"] == "completed" and list(metrics["round"]) == [0, 1, 2]
    model = summary["model"]
    assert model["init"] == "random (preset test-small)"
    assert model["update_bytes"] < model["full_model_bytes"]
    trained = metrics[metrics["round"] > 0]
    assert (trained["bytes_up"] == 3 * model["update_bytes"]).all()  # 3 clients, head only
    # The head learns: the central loss falls every round (by little), as does the training
    # loss, though two rounds leave accuracy at chance.
    assert metrics["central_loss"].diff().iloc[1:].lt(0).all()
    assert trained["train_loss"].diff().iloc[1:].lt(0).all()
    assert "central_wer" not in metrics  # classification: no WER


@pytest.mark.ray
def test_whisper_asr_federated_run_reports_wer_and_cer(tmp_path, cli, ray_runtime):
    metrics, summary = run(tmp_path, ASR, cli)
    assert summary["status"] == "completed" and list(metrics["round"]) == [0, 1, 2]
    for column in ("central_wer", "central_cer"):
        assert metrics[column].notna().all(), column  # every round, the initial model's too
    assert metrics["central_loss"].diff().iloc[1:].lt(0).all()  # it learns
    (run_dir,) = run_dirs(tmp_path)
    clients = pd.read_parquet(run_dir / "clients.parquet").groupby("round")
    trained = metrics[metrics["round"] > 0]
    for key in ("wer", "cer"):  # federated means weigh the clients by their test examples
        weighted = clients.apply(
            lambda c, key=key: np.average(c[f"eval_{key}"], weights=c["num-examples"]),
            include_groups=False,
        )
        assert weighted.tolist() == pytest.approx(trained[f"fed_{key}_mean"].tolist()), key
    # The worst 10% of 3 clients is the one with the highest WER.
    assert clients["eval_wer"].max().tolist() == pytest.approx(trained["fed_wer_worst10"].tolist())
    assert summary["final"]["central_wer"] == pytest.approx(metrics["central_wer"].iloc[-1])
    assert (metrics["fed_wer_worst10"].dropna() >= metrics["fed_wer_mean"].dropna()).all()
    assert summary["model"]["name"] == "whisper-asr"
