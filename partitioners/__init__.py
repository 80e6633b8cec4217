"""Seeded federated partitioners for labelled (speech) data, usable without simfl.

A partitioner is built from ``(num_partitions, params, seed)``, with ``params`` one of the
pydantic models in :mod:`partitioners.params`, and ``split(labels, metadata)`` returns one sorted
index array per partition. Infeasible requests raise :class:`partitioners.errors.PartitionError`
naming the parameter. :class:`partitioners.flower.FlowerPartitioner` serves any of them through
Flower Datasets' interface. Names are imported on first use, so ``import partitioners`` costs
nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "AccentPartitioner": "natural",
    "AcousticPartitioner": "feature_shift",
    "ComposePartitioner": "compose",
    "DirichletPartitioner": "dirichlet",
    "FlowerPartitioner": "flower",
    "IidPartitioner": "iid",
    "PartitionError": "errors",
    "PathologicalPartitioner": "label_shift",
    "QuantityPartitioner": "quantity",
    "ShardsPartitioner": "label_shift",
    "SpeakerGroupsPartitioner": "natural",
    "SpeakerPartitioner": "natural",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'partitioners' has no attribute {name!r}")
    return getattr(importlib.import_module(f"partitioners.{_HOMES[name]}"), name)
