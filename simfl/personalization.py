"""Which model entries travel in Flower messages: trainable and not local.

A state-dict entry is local when a ``local_layers`` pattern occurs in its name (FedPer's
``"head" in name``) or, with ``local_batch_norm``, when it belongs to a BatchNorm module (its
weight, bias and running statistics: FedBN). It is frozen when it is a parameter that never
trains (a frozen Whisper encoder) or an integer counter (BatchNorm's ``num_batches_tracked``):
the server and every client rebuild frozen parameters identically (seeded initialisation,
deterministic pretrained loads), so sending them would only cost bytes. What remains (floating
buffers such as running statistics included) is shared and is all that travels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from torch import nn

from simfl.schema.strategy import StrategyBase

V = TypeVar("V")


def batch_norm_names(model: nn.Module) -> set[str]:
    """State-dict names of every BatchNorm module's parameters and buffers."""
    names: set[str] = set()
    for prefix, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            names.update(f"{prefix}.{key}" for key in module.state_dict())
    return names


def local_names(model: nn.Module, strategy: StrategyBase) -> frozenset[str]:
    """The state-dict names this strategy keeps on the clients."""
    names = {
        name
        for name in model.state_dict()
        if any(pattern in name for pattern in strategy.local_layers)
    }
    if strategy.local_batch_norm:
        names |= batch_norm_names(model)
    return frozenset(names)


def frozen_names(model: nn.Module) -> frozenset[str]:
    """State-dict names that never travel: parameters without gradients (tied names included)
    and integer buffers.

    An integer buffer is a counter, not a learned value (BatchNorm's ``num_batches_tracked``,
    which only matters with ``momentum=None``): it cannot be averaged, and Flower's QFedAvg
    fails on it (it scales every array in place by a float).
    """
    untrained = {
        name
        for name, param in model.named_parameters(remove_duplicate=False)
        if not param.requires_grad
    }
    counters = {
        name
        for name, buffer in model.named_buffers(remove_duplicate=False)
        if not buffer.is_floating_point()
    }
    return frozenset(untrained | counters)


def unmatched_patterns(model: nn.Module, patterns: Iterable[str]) -> list[str]:
    """``local_layers`` patterns that match no state-dict entry (almost surely typos)."""
    names = list(model.state_dict())
    return [pattern for pattern in patterns if not any(pattern in name for name in names)]


def split_state(
    state: Mapping[str, V], local: frozenset[str], frozen: frozenset[str] = frozenset()
) -> tuple[dict[str, V], dict[str, V]]:
    """(shared, local) parts of a state dict, each in the state dict's order, frozen left out.

    A frozen entry is in neither part: it never changes, so it needs neither sending nor saving.
    """
    kept = {k: v for k, v in state.items() if k not in frozen}
    shared = {k: v for k, v in kept.items() if k not in local}
    return shared, {k: v for k, v in kept.items() if k in local}
