"""Everything a ServerApp or ClientApp needs to know, small enough to travel with every call."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simfl import registry
from simfl.config import Scenario
from simfl.engine.extensions import features_for
from simfl.seeding import derive_seed


@dataclass(frozen=True)
class RunPlan:
    """The validated scenario plus where its prepared data lives (paths, never arrays)."""

    scenario: Scenario
    train_store: Path
    test_store: Path
    index_dir: Path
    num_classes: int
    state_dir: Path | None = None  # per-client state (FedBN/FedPer local parts), one file each
    label_names: tuple[str, ...] = ()  # the transcripts, for transcription tasks
    # Which worker state serves this plan: hashed once here, it travels with every call.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = f"{self.scenario.full_hash()}:{self.train_store}:{self.index_dir}:{self.state_dir}"
        object.__setattr__(self, "key", key)

    @property
    def transcribes(self) -> bool:
        return registry.MODELS[self.scenario.model.name].task == "transcription"

    def task(self) -> Any:
        """The learning task (see :mod:`simfl.tasks`); None for classification."""
        if not self.transcribes:
            return None
        from simfl.tasks import transcription_task

        return transcription_task(self)

    def build_model(self) -> nn.Module:
        entry = registry.MODELS[self.scenario.model.name]
        if self.transcribes:
            return entry.load()(self.scenario.model, self.task().tokenizer)
        model = entry.load()(self.scenario.model, self.num_classes)
        for feature in features_for(self.scenario):  # e.g. DP-SGD's GroupNorm for BatchNorm
            model = feature.adapt_model(self, model)
        return model

    def initial_model(self) -> nn.Module:
        """The run's initial model, identical wherever it is built (server or any client)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.scenario.scenario.seed, "model-init"))
            return self.build_model()
