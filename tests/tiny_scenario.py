"""The tiny scenario every end-to-end test runs: 4 clients, 12 words, 8 speakers, 2 rounds."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

TINY = """
[scenario]
name = "tiny"
seed = 3
rounds = 2

[data]
dataset = "synth-commands"
view = "12-class"
num_clients = 4
local_test_fraction = 0.25

[data.synth]
words = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "cat", "dog"]
num_speakers = 8
takes_per_speaker = 1
silence_clips_per_speaker = 1
test_speaker_fraction = 0.25

[partition]
kind = "dirichlet"
alpha = 1.0
min_size = 4

[model]
name = "kws-cnn"

[train]
batch_size = 8
lr = 0.05

[strategy]
name = "fedavg"
fraction_train = 0.75
fraction_evaluate = 1.0
min_train_nodes = 2
min_evaluate_nodes = 2
min_available_nodes = 4

[tracking]
results_dir = "{results}"
cache_dir = "{cache}"
wandb_mode = "offline"
"""


def tiny_text(results: Path, cache: Path) -> str:
    return TINY.format(results=results, cache=cache)


def tiny_raw(results: Path, cache: Path) -> dict[str, Any]:
    return tomllib.loads(tiny_text(results, cache))


def tiny_scenario(results: Path, cache: Path, **sections: dict[str, Any]):
    """The tiny scenario, validated, with ``sections`` merged into its tables."""
    from simfl.config import scenario_from_dict

    raw = tiny_raw(results, cache)
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return scenario_from_dict(raw, "tiny.toml")
