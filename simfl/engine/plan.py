"""Everything a ServerApp or ClientApp needs to know, small enough to travel with every call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from simfl import registry
from simfl.config import Scenario


@dataclass(frozen=True)
class RunPlan:
    """The validated scenario plus where its prepared data lives (paths, never arrays)."""

    scenario: Scenario
    train_store: Path
    test_store: Path
    index_dir: Path
    num_classes: int

    def cache_key(self) -> str:
        return f"{self.scenario.full_hash()}:{self.train_store}:{self.index_dir}"

    def build_model(self) -> nn.Module:
        entry = registry.MODELS[self.scenario.model.name]
        return entry.factory(self.scenario.model, self.num_classes)
