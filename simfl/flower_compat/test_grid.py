"""Contract tests for :mod:`simfl.flower_compat.grid`, one per named assumption, and the
virtual-client grid's routing."""

from __future__ import annotations

import random

import pytest
from flwr.app import ArrayRecord, ConfigRecord
from flwr.serverapp.strategy import FedAvg

from simfl.flower_compat import grid as compat_grid
from simfl.flower_compat.grid import (
    PARTITION_ID_KEY,
    VirtualClientGrid,
    addressed,
    cohort_size,
    fixed_cohort,
    message_partition,
    seeded_sampling,
)


@pytest.fixture
def virtual_grid(in_memory_grid):
    """``virtual_grid(n)``: n partitions on a two-slot in-memory grid."""
    return lambda num_partitions: VirtualClientGrid(in_memory_grid(2), num_partitions, [1, 2])


def test_strategies_sample_with_module_random(flower_task, in_memory_grid) -> None:
    """Same seed, same nodes; and seeded_sampling leaves ``random`` as it found it."""
    grid = in_memory_grid(10)
    strategy = FedAvg(fraction_train=0.3, min_train_nodes=2, min_available_nodes=2)
    arrays = ArrayRecord({})

    def sampled(seed: int) -> list[int]:
        with flower_task(), seeded_sampling(seed):
            messages = strategy.configure_train(1, arrays, ConfigRecord(), grid)
        return [message.metadata.dst_node_id for message in messages]

    assert sampled(7) == sampled(7), (
        "strategies-sample-with-module-random: node sampling no longer follows `random`"
    )
    assert sampled(7) != sampled(8)
    random.seed(123)
    expected = random.random()
    random.seed(123)
    sampled(7)
    assert random.random() == expected, "seeded_sampling must restore the random module"


def test_partition_id_key_is_flowers() -> None:
    from flwr.common.constant import PARTITION_ID_KEY as FLOWERS

    assert PARTITION_ID_KEY is FLOWERS == "partition-id", "partition-id-key-is-flowers"


@pytest.mark.parametrize(("fraction", "minimum"), [(0.3, 2), (0.05, 2), (1.0, 2), (0.5, 7)])
def test_strategies_sample_fraction_or_min_nodes(
    fraction: float, minimum: int, flower_task, in_memory_grid
) -> None:
    """simfl registers cohort_size nodes; Flower's FedAvg must ask for exactly that many."""
    virtual = VirtualClientGrid(in_memory_grid(2), 10, [101, 102])
    strategy = FedAvg(fraction_train=fraction, min_train_nodes=minimum, min_available_nodes=2)
    with flower_task(), seeded_sampling(0):
        messages = list(strategy.configure_train(1, ArrayRecord({}), ConfigRecord(), virtual))
    assert len(messages) == cohort_size(10, fraction, minimum), (
        "strategies-sample-fraction-or-min-nodes: Flower's sample size changed; simfl would "
        "register too few nodes"
    )
    assert {m.metadata.dst_node_id for m in messages} <= set(range(10))


@pytest.mark.parametrize("strategy_name", ["FedAvg", "Krum", "FedMedian", "FedTrimmedAvg"])
@pytest.mark.parametrize(("phase", "size"), [("train", 7), ("train", 3), ("evaluate", 4)])
def test_strategies_read_cohort_attributes_when_configuring(
    strategy_name: str, phase: str, size: int, flower_task, virtual_grid
) -> None:
    """Over-selection and availability set the cohort through the strategy's attributes."""
    import flwr.serverapp.strategy as strategies

    name = "strategies-read-cohort-attributes-when-configuring"
    strategy = getattr(strategies, strategy_name)(min_available_nodes=10, min_train_nodes=2)
    grid = virtual_grid(10)
    grid.set_available([0, 2, 4, 5, 6, 7, 9])  # fewer than min_available_nodes: no waiting
    configure = getattr(strategy, f"configure_{phase}")
    saved = dict(vars(strategy))
    with flower_task(), seeded_sampling(1):
        with fixed_cohort(strategy, phase, size):
            messages = list(configure(1, ArrayRecord({}), ConfigRecord(), grid))
        with fixed_cohort(strategy, phase, 0):
            nobody = list(configure(1, ArrayRecord({}), ConfigRecord(), grid))
    assert len(messages) == size, f"{name}: the cohort is no longer set by the attributes"
    assert {m.metadata.dst_node_id for m in messages} <= {0, 2, 4, 5, 6, 7, 9}
    assert nobody == [], f"{name}: a fraction of 0.0 no longer samples nobody"
    assert vars(strategy) == saved  # settings restored


def test_virtual_grid_addresses_a_copy_naming_the_partition(flower_task, virtual_grid) -> None:
    strategy = FedAvg(fraction_train=0.5, min_train_nodes=2, min_available_nodes=2)
    arrays = ArrayRecord({})
    with flower_task(), seeded_sampling(0):
        messages = list(strategy.configure_train(3, arrays, ConfigRecord(), virtual_grid(10)))
        routed = addressed(messages[0], 4242, 7)
    assert routed.metadata.dst_node_id == 4242
    assert message_partition(routed) == 7
    assert routed.content["config"]["server-round"] == 3
    assert routed.content["arrays"] is arrays  # the model is shared, not copied
    assert PARTITION_ID_KEY not in messages[0].content["config"]


@pytest.mark.parametrize("method", ["get_node_ids", "send_and_receive"])
def test_virtual_grid_offers_what_strategies_call(method: str) -> None:
    assert callable(getattr(compat_grid.VirtualClientGrid, method))


def test_virtual_grid_leaves_the_grid_s_reply_polling_alone(in_memory_grid) -> None:
    """Replies wake the server (wakeups.replies_awaited): the grid's own poll is not tuned."""
    grid = in_memory_grid(2)
    interval = grid.pull_interval
    VirtualClientGrid(grid, 5, grid.get_node_ids())
    assert grid.pull_interval == interval
