"""Name -> schema and factory tables for datasets, partitioners, models and strategies.

Each entry's ``config`` is a pydantic model whose tag field (``dataset``, ``kind`` or ``name``)
holds its registry name as a ``Literal``; :mod:`simfl.config` builds tagged unions from them, so a
new family member is one entry here and nothing else.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from partitioners.dirichlet import DirichletConfig, DirichletPartitioner
from partitioners.iid import IidConfig, IidPartitioner
from simfl.data.sources import SynthCommandsData, load_synth_source
from simfl.models.kws_cnn import KwsCnnParams, build_kws_cnn
from simfl.strategies.fedavg import FedAvgConfig, build_fedavg


class KwsCnnConfig(KwsCnnParams):
    """``[model] name = "kws-cnn"`` plus the CNN's own parameters."""

    name: Literal["kws-cnn"]


@dataclass(frozen=True)
class Entry:
    name: str
    config: type[BaseModel]
    factory: Callable[..., Any]
    summary: str


DATASETS: dict[str, Entry] = {
    "synth-commands": Entry(
        "synth-commands",
        SynthCommandsData,
        load_synth_source,
        "Speech Commands words synthesized offline with eSpeak NG (many synthetic speakers)",
    ),
}

PARTITIONERS: dict[str, Entry] = {
    "iid": Entry("iid", IidConfig, IidPartitioner.from_config, "uniform random split"),
    "dirichlet": Entry(
        "dirichlet",
        DirichletConfig,
        DirichletPartitioner.from_config,
        "label shift: per-class client shares drawn from Dirichlet(alpha)",
    ),
}

MODELS: dict[str, Entry] = {
    "kws-cnn": Entry("kws-cnn", KwsCnnConfig, build_kws_cnn, "small CNN over log-mel features"),
}

STRATEGIES: dict[str, Entry] = {
    "fedavg": Entry("fedavg", FedAvgConfig, build_fedavg, "Federated Averaging (McMahan 2017)"),
}

TABLES: dict[str, dict[str, Entry]] = {
    "datasets": DATASETS,
    "partitioners": PARTITIONERS,
    "models": MODELS,
    "strategies": STRATEGIES,
}


def _configs(table: dict[str, Entry]) -> tuple[type[BaseModel], ...]:
    return tuple(entry.config for entry in table.values())


def dataset_configs() -> tuple[type[BaseModel], ...]:
    return _configs(DATASETS)


def partitioner_configs() -> tuple[type[BaseModel], ...]:
    return _configs(PARTITIONERS)


def model_configs() -> tuple[type[BaseModel], ...]:
    return _configs(MODELS)


def strategy_configs() -> tuple[type[BaseModel], ...]:
    return _configs(STRATEGIES)


def tags_of(model: type[BaseModel]) -> tuple[str, ...]:
    """The registry names a config class answers to (the values of its Literal tag field)."""
    for field_name in ("dataset", "kind", "name"):
        field = model.model_fields.get(field_name)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return tuple(typing.get_args(field.annotation))
    return ()
