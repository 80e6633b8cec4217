"""Contract tests for :mod:`simfl.flower_compat.strategy_state`, one per named assumption."""

from __future__ import annotations

import random

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from simfl.flower_compat.strategy_state import (
    STRATEGY_STATE_ATTRIBUTES,
    restore_strategy_server_state,
    strategy_server_state,
    valid_train_contents,
)


def _round(strategy, server_round: int, arrays, rng, grid):
    """configure_train on a real grid, one reply per sampled node, aggregate_train."""
    random.seed(server_round)
    messages = list(strategy.configure_train(server_round, arrays, ConfigRecord(), grid))
    replies = []
    for message in messages:
        update = {
            k: Array(v.numpy() + rng.normal(size=v.shape).astype("float32"))
            for k, v in arrays.items()
        }
        content = RecordDict(
            {"arrays": ArrayRecord(update), "metrics": MetricRecord({"num-examples": 4})}
        )
        replies.append(Message(content=content, reply_to=message))
    new_arrays, _ = strategy.aggregate_train(server_round, replies)
    return new_arrays


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("FedAdam", {"current_arrays": dict, "m_t": dict, "v_t": dict}),
        ("FedYogi", {"current_arrays": dict, "m_t": dict, "v_t": dict}),
        ("FedAdagrad", {"current_arrays": dict, "m_t": dict, "v_t": dict}),
        ("FedAvgM", {"current_arrays": ArrayRecord, "momentum_vector": list}),
        ("FedAvg", {}),
    ],
)
def test_strategy_state_in_named_attributes(
    name: str, expected: dict, flower_task, in_memory_grid
) -> None:
    """After two rounds the state is in exactly these attributes; restored into a fresh
    strategy, the third round gives bit-identical weights (what checkpoints rely on)."""
    from flwr.serverapp import strategy as strategies

    def build():
        kwargs = {"fraction_train": 1.0, "min_train_nodes": 3, "min_available_nodes": 3}
        if name == "FedAvgM":
            kwargs["server_momentum"] = 0.9
        return getattr(strategies, name)(**kwargs)

    rng = np.random.default_rng(0)
    arrays = ArrayRecord({"w": Array(rng.normal(size=(3, 2)).astype("float32"))})
    original = build()
    with flower_task():
        for server_round in (1, 2):
            arrays = _round(
                original, server_round, arrays, np.random.default_rng(server_round),
                in_memory_grid(3),
            )  # fmt: skip
    for attribute in STRATEGY_STATE_ATTRIBUTES:
        kind = expected.get(attribute)
        value = getattr(original, attribute, None)
        assert (value is None) if kind is None else isinstance(value, kind), (
            f"strategy-state-in-named-attributes: {name}.{attribute} is {type(value).__name__}"
        )
    state = strategy_server_state(original)
    assert sorted(state) == sorted(expected)
    restored = build()
    restore_strategy_server_state(restored, state)
    with flower_task():
        going_on = _round(original, 3, arrays, np.random.default_rng(3), in_memory_grid(3))
        resumed = _round(restored, 3, arrays, np.random.default_rng(3), in_memory_grid(3))
    np.testing.assert_array_equal(going_on["w"].numpy(), resumed["w"].numpy())
    assert going_on["w"].numpy().tobytes() == resumed["w"].numpy().tobytes()


def test_check_and_log_replies_filters_and_checks(flower_task) -> None:
    from flwr.serverapp.exception import InconsistentMessageReplies

    strategy = FedAvg()

    def reply(content: RecordDict | None) -> Message:
        request = Message(RecordDict(), dst_node_id=1, message_type="train")
        if content is None:
            return Message(Error(code=0, reason="failed"), reply_to=request)
        return Message(content, reply_to=request)

    with flower_task():
        good = RecordDict(
            {"arrays": ArrayRecord([np.ones(2)]), "metrics": MetricRecord({"num-examples": 3})}
        )
        contents = valid_train_contents(strategy, [reply(good), reply(None)])
        assert contents == [good], (
            "check-and-log-replies-filters-and-checks: _check_and_log_replies no longer returns "
            "the replies without an error"
        )
        no_weight = RecordDict({"arrays": ArrayRecord([np.ones(2)]), "metrics": MetricRecord({})})
        with pytest.raises(InconsistentMessageReplies):
            valid_train_contents(strategy, [reply(no_weight)])
