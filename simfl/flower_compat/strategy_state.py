"""What a Flower strategy carries between rounds, and which replies it would aggregate.

A checkpoint must give a strategy back its server state bit for bit, and a rule that replaces
only a strategy's averaging step must filter replies as Flower does. Flower offers neither as
API: the state is in plain attributes, the filtering in a private method.

Assumptions (contract-tested in ``test_strategy_state.py``):

- ``strategy-state-in-named-attributes``: Flower's strategies keep their server state in
  plain attributes, each ``None`` until the first round: ``current_arrays`` (FedOpt family:
  dict of ndarrays; FedAvgM, QFedAvg: ``ArrayRecord``), ``m_t`` and ``v_t`` (FedAdam, FedYogi,
  FedAdagrad: dicts of ndarrays), ``momentum_vector`` (FedAvgM: list of ndarrays). Nothing else
  carries over between rounds.
- ``check-and-log-replies-filters-and-checks``: ``Strategy._check_and_log_replies(replies,
  is_train=True)`` returns ``(valid, errors)``: the replies without an error, after checking
  their contents as the strategy's own ``aggregate_train`` does
  (``InconsistentMessageReplies`` when, e.g., the weighting key is missing).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flwr.app import Array, ArrayRecord, Message, RecordDict

from simfl.errors import SimflError

#: Every attribute through which a Flower strategy carries state across rounds
#: (``strategy-state-in-named-attributes``).
STRATEGY_STATE_ATTRIBUTES = ("current_arrays", "m_t", "v_t", "momentum_vector")


def strategy_server_state(strategy: Any) -> dict[str, Any]:
    """The strategy's server state (``strategy-state-in-named-attributes``) as tensors, for a
    ``weights_only`` checkpoint.

    Each value keeps its container (``ArrayRecord``, dict or list) and every array its dtype,
    so :func:`restore_strategy_server_state` gives the strategy back bit for bit.
    """
    state: dict[str, Any] = {}
    for name in STRATEGY_STATE_ATTRIBUTES:
        value = getattr(strategy, name, None)
        if value is None:
            continue
        if isinstance(value, ArrayRecord):
            state[name] = {
                "kind": "record",
                "arrays": {k: _tensor(a.numpy()) for k, a in value.items()},
            }
        elif isinstance(value, dict):
            state[name] = {"kind": "dict", "arrays": {k: _tensor(v) for k, v in value.items()}}
        elif isinstance(value, list):
            state[name] = {"kind": "list", "arrays": [_tensor(v) for v in value]}
        else:
            raise SimflError(
                f"cannot checkpoint {type(strategy).__name__}.{name} ({type(value).__name__}): "
                "simfl.flower_compat.strategy_state does not know this Flower state"
            )
    return state


def restore_strategy_server_state(strategy: Any, state: dict[str, Any]) -> None:
    """Set what :func:`strategy_server_state` saved back on a freshly built strategy."""
    for name, saved in state.items():
        if name not in STRATEGY_STATE_ATTRIBUTES or not hasattr(strategy, name):
            raise SimflError(f"checkpoint holds {name!r}, which {type(strategy).__name__} lacks")
        arrays = saved["arrays"]
        if saved["kind"] == "record":
            value: Any = ArrayRecord({k: Array(t.numpy()) for k, t in arrays.items()})
        elif saved["kind"] == "dict":
            value = {k: t.numpy() for k, t in arrays.items()}
        else:
            value = [t.numpy() for t in arrays]
        setattr(strategy, name, value)


def valid_train_contents(strategy: Any, replies: Iterable[Message]) -> list[RecordDict]:
    """The training replies a Flower strategy would aggregate, as Flower checks them
    (``check-and-log-replies-filters-and-checks``), so a rule that replaces only the averaging
    step keeps Flower's filtering."""
    valid_replies, _ = strategy._check_and_log_replies(replies, is_train=True)
    return [message.content for message in valid_replies]


def _tensor(array: Any) -> Any:
    """A torch tensor owning a copy of ``array`` (torch is imported only when checkpointing)."""
    import numpy as np
    import torch

    return torch.from_numpy(np.array(array, copy=True))
