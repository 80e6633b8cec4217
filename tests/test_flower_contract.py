"""Contract tests: each Flower internal that simfl.engine.flower_internals relies on.

A Flower upgrade that changes one of these fails here, naming the assumption (numbered as in
the module docstring of :mod:`simfl.engine.flower_internals`), instead of silently changing
how simfl runs or which clients it samples.
"""

from __future__ import annotations

import inspect
import logging
import random

import flwr
import pytest
from flower_helpers import flower_task, in_memory_grid
from flwr.app import ArrayRecord, ConfigRecord
from flwr.serverapp.strategy import FedAvg

from simfl.engine import flower_internals


def test_flower_version_is_the_one_checked() -> None:
    assert flwr.__version__.startswith("1.42."), (
        f"flower_internals was written against Flower 1.42; found {flwr.__version__}: "
        "re-read every assumption in simfl/engine/flower_internals.py"
    )


def test_1_run_simulation_signature() -> None:
    from flwr.simulation import run_simulation

    params = inspect.signature(run_simulation).parameters
    for name in ("server_app", "client_app", "num_supernodes", "backend_config", "verbose_logging"):
        assert name in params, f"assumption 1: run_simulation lost its {name!r} argument"


def test_2_engine_looks_up_ray_backend_by_name_when_it_starts() -> None:
    from flwr.server.superlink.fleet.vce import vce_api

    source = inspect.getsource(vce_api.start_vce)
    assert "from .backend.raybackend import RayBackend" in source, (
        "assumption 2: start_vce no longer imports raybackend.RayBackend when it starts, so "
        "simfl's session backend (actor reuse across sweep cells) would be ignored"
    )


def test_3_ray_backend_interface() -> None:
    from flwr.server.superlink.fleet.vce.backend.raybackend import RayBackend

    for method in ("build", "terminate"):
        assert callable(getattr(RayBackend, method, None)), f"assumption 3: RayBackend.{method}"
    build = inspect.getsource(RayBackend.build)
    assert "self.pool" in build and "self.app_fn" in build, (
        "assumption 3: RayBackend.build no longer sets self.pool / self.app_fn"
    )
    init = inspect.getsource(RayBackend.__init__)
    for attribute in ("self.client_resources", "self.actor_kwargs"):
        assert attribute in init, f"assumption 3: RayBackend.__init__ no longer sets {attribute}"
    assert "ray.shutdown()" in inspect.getsource(RayBackend.terminate), (
        "assumption 3: RayBackend.terminate no longer shuts Ray down (simfl overrides it to "
        "keep a sweep's runtime alive)"
    )


def test_4_actor_pool_interface_and_idle_only_termination() -> None:
    from flwr.simulation.ray_transport.ray_actor import BasicActorPool

    params = inspect.signature(BasicActorPool.__init__).parameters
    for name in ("actor_type", "client_resources", "actor_kwargs"):
        assert name in params, f"assumption 4: BasicActorPool lost its {name!r} argument"
    for name in ("add_actors_to_pool", "terminate_all_actors"):
        assert callable(getattr(BasicActorPool, name, None)), f"assumption 4: {name}"
    init = inspect.getsource(BasicActorPool.__init__)
    for attribute in ("self.pool", "self.num_actors", "self.actors_capacity", "create_actor_fn"):
        assert attribute in init, f"assumption 4: BasicActorPool no longer has {attribute}"
    add = inspect.getsource(BasicActorPool.add_actors_to_pool)
    assert "self.create_actor_fn()" in add, (
        "assumption 4: actors are no longer made by create_actor_fn, so ActorPools cannot "
        "track (and kill) busy actors"
    )


def test_5_strategies_sample_nodes_with_module_random() -> None:
    """Same seed, same nodes; and simfl's seeded_sampling leaves ``random`` as it found it."""
    grid = in_memory_grid(10)
    strategy = FedAvg(fraction_train=0.3, min_train_nodes=2, min_available_nodes=2)
    arrays = ArrayRecord({})

    def sampled(seed: int) -> list[int]:
        with flower_task(), flower_internals.seeded_sampling(seed):
            messages = strategy.configure_train(1, arrays, ConfigRecord(), grid)
        return [message.metadata.dst_node_id for message in messages]

    assert sampled(7) == sampled(7), "assumption 5: node sampling no longer follows `random`"
    assert sampled(7) != sampled(8)
    random.seed(123)
    expected = random.random()
    random.seed(123)
    sampled(7)
    assert random.random() == expected, "seeded_sampling must restore the random module"


def test_6_partition_id_key_is_flowers() -> None:
    from flwr.common.constant import PARTITION_ID_KEY
    from flwr.server.superlink.fleet.vce import vce_api

    assert flower_internals.PARTITION_ID_KEY is PARTITION_ID_KEY == "partition-id"
    assert "PARTITION_ID_KEY: partition_id" in inspect.getsource(vce_api), (
        "assumption 6: simulated nodes no longer get their partition id in node_config"
    )


def test_flower_log_level_is_restored() -> None:
    logger = logging.getLogger("flwr")
    saved = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with flower_internals._flower_log_level(logging.CRITICAL):
            assert logger.level == logging.CRITICAL
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(saved)


@pytest.mark.parametrize("method", ["get_node_ids", "send_and_receive"])
def test_partition_ordered_grid_offers_what_strategies_call(method: str) -> None:
    assert callable(getattr(flower_internals.PartitionOrderedGrid, method))


def _round(strategy, server_round: int, arrays, rng):
    """configure_train on a real grid, one reply per sampled node, aggregate_train."""
    from flwr.app import Array, Message, MetricRecord, RecordDict

    grid = in_memory_grid(3)
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
def test_7_strategy_server_state_is_in_named_attributes(name: str, expected: dict) -> None:
    """After two rounds the state is in exactly these attributes; restored into a fresh
    strategy, the third round gives bit-identical weights (what checkpoints rely on)."""
    import numpy as np
    from flwr.app import Array
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
            arrays = _round(original, server_round, arrays, np.random.default_rng(server_round))
    for attribute in flower_internals.STRATEGY_STATE_ATTRIBUTES:
        kind = expected.get(attribute)
        value = getattr(original, attribute, None)
        assert (value is None) if kind is None else isinstance(value, kind), (
            f"assumption 7: {name}.{attribute} is {type(value).__name__}"
        )
    state = flower_internals.strategy_server_state(original)
    assert sorted(state) == sorted(expected)
    restored = build()
    flower_internals.restore_strategy_server_state(restored, state)
    with flower_task():
        going_on = _round(original, 3, arrays, np.random.default_rng(3))
        resumed = _round(restored, 3, arrays, np.random.default_rng(3))
    np.testing.assert_array_equal(going_on["w"].numpy(), resumed["w"].numpy())
    assert going_on["w"].numpy().tobytes() == resumed["w"].numpy().tobytes()
