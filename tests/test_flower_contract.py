"""Contract tests: each Flower internal that simfl.engine.flower_internals relies on.

A Flower upgrade that changes one of these fails here, naming the assumption (numbered as in
the module docstring of :mod:`simfl.engine.flower_internals`), instead of silently changing
how simfl runs or which clients it samples.
"""

from __future__ import annotations

import contextlib
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

    assert flower_internals.PARTITION_ID_KEY is PARTITION_ID_KEY == "partition-id"


@pytest.mark.parametrize(("fraction", "minimum"), [(0.3, 2), (0.05, 2), (1.0, 2), (0.5, 7)])
def test_7_cohort_size_is_what_flowers_strategies_sample(fraction: float, minimum: int) -> None:
    """simfl registers cohort_size nodes; Flower's FedAvg must ask for exactly that many."""
    virtual = flower_internals.VirtualClientGrid(in_memory_grid(2), 10, [101, 102])
    strategy = FedAvg(fraction_train=fraction, min_train_nodes=minimum, min_available_nodes=2)
    with flower_task(), flower_internals.seeded_sampling(0):
        messages = list(strategy.configure_train(1, ArrayRecord({}), ConfigRecord(), virtual))
    assert len(messages) == flower_internals.cohort_size(10, fraction, minimum), (
        "assumption 7: Flower's sample size changed; simfl would register too few nodes"
    )
    assert {m.metadata.dst_node_id for m in messages} <= set(range(10))


def test_virtual_grid_addresses_a_copy_naming_the_partition() -> None:
    strategy = FedAvg(fraction_train=0.5, min_train_nodes=2, min_available_nodes=2)
    arrays = ArrayRecord({})
    with flower_task(), flower_internals.seeded_sampling(0):
        messages = list(strategy.configure_train(3, arrays, ConfigRecord(), _grid(10)))
        routed = flower_internals._addressed(messages[0], 4242, 7)
    assert routed.metadata.dst_node_id == 4242
    assert flower_internals.message_partition(routed) == 7
    assert routed.content["config"]["server-round"] == 3
    assert routed.content["arrays"] is arrays  # the model is shared, not copied
    assert flower_internals.PARTITION_ID_KEY not in messages[0].content["config"]


def _grid(num_partitions: int) -> flower_internals.VirtualClientGrid:
    return flower_internals.VirtualClientGrid(in_memory_grid(2), num_partitions, [1, 2])


def test_7_engine_runs_one_thread_per_actor_in_a_default_thread_pool() -> None:
    from flwr.server.superlink.fleet.vce import vce_api

    source = inspect.getsource(vce_api.run_api)
    assert "with ThreadPoolExecutor() as executor" in source, (
        "assumption 7: run_api no longer makes its worker threads in a default "
        "ThreadPoolExecutor(); simfl's lift of the min(32, cpu_count + 4) cap may be moot"
    )
    assert "for _ in range(backend.num_workers)" in source, (
        "assumption 7: run_api no longer starts one worker per actor"
    )
    assert vce_api.ThreadPoolExecutor is flower_internals.ThreadPoolExecutor  # restored
    with flower_internals._one_thread_per_actor():
        executor = vce_api.ThreadPoolExecutor()
        assert executor._max_workers == flower_internals.MAX_WORKER_THREADS
        executor.shutdown()
    assert vce_api.ThreadPoolExecutor is flower_internals.ThreadPoolExecutor


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
def test_virtual_grid_offers_what_strategies_call(method: str) -> None:
    assert callable(getattr(flower_internals.VirtualClientGrid, method))


@pytest.mark.parametrize("strategy_name", ["FedAvg", "Krum", "FedMedian", "FedTrimmedAvg"])
@pytest.mark.parametrize(("phase", "size"), [("train", 7), ("train", 3), ("evaluate", 4)])
def test_8_fixed_cohort_makes_flower_sample_exactly_that_many(
    strategy_name: str, phase: str, size: int
) -> None:
    """Over-selection and availability set the cohort through the strategy's attributes."""
    import flwr.serverapp.strategy as strategies

    strategy = getattr(strategies, strategy_name)(min_available_nodes=10, min_train_nodes=2)
    grid = _grid(10)
    grid.set_available([0, 2, 4, 5, 6, 7, 9])  # fewer than min_available_nodes: no waiting
    configure = getattr(strategy, f"configure_{phase}")
    saved = dict(vars(strategy))
    with flower_task(), flower_internals.seeded_sampling(1):
        with flower_internals.fixed_cohort(strategy, phase, size):
            messages = list(configure(1, ArrayRecord({}), ConfigRecord(), grid))
        with flower_internals.fixed_cohort(strategy, phase, 0):
            nobody = list(configure(1, ArrayRecord({}), ConfigRecord(), grid))
    assert len(messages) == size, "assumption 8: the cohort is no longer set by the attributes"
    assert {m.metadata.dst_node_id for m in messages} <= {0, 2, 4, 5, 6, 7, 9}
    assert nobody == [], "assumption 8: a fraction of 0.0 no longer samples nobody"
    assert vars(strategy) == saved  # settings restored


def test_9_dp_noise_draws_from_numpy_global_generator() -> None:
    import numpy as np
    from flwr.supercore.differential_privacy import add_gaussian_noise_inplace

    with flower_internals.seeded_numpy_global(123):
        arrays = [np.zeros(5, dtype=np.float32)]
        add_gaussian_noise_inplace(arrays, 0.5)
        again = [np.zeros(5, dtype=np.float32)]
    with flower_internals.seeded_numpy_global(123):
        add_gaussian_noise_inplace(again, 0.5)
    np.random.seed(123)
    expected = np.random.normal(0, 0.5, 5).astype(np.float32)
    assert np.array_equal(arrays[0], expected) and np.array_equal(again[0], expected), (
        "assumption 11: Flower's DP noise no longer comes from np.random; DP runs would not be "
        "reproducible (simfl.engine.flower_internals.seeded_numpy_global)"
    )


def test_10_dp_clipping_is_imported_by_name_and_inexact() -> None:
    import numpy as np
    from flwr.clientapp.mod import centraldp_mods, localdp_mod
    from flwr.serverapp.strategy import dp_adaptive_clipping, dp_fixed_clipping
    from flwr.supercore.differential_privacy import compute_clip_model_update

    for module, name in [
        (dp_fixed_clipping, "compute_clip_model_update"),
        (centraldp_mods, "compute_clip_model_update"),
        (centraldp_mods, "compute_adaptive_clip_model_update"),
        (localdp_mod, "compute_clip_model_update"),
        (dp_adaptive_clipping, "adaptive_clip_inputs_inplace"),
    ]:
        assert callable(getattr(module, name, None)), f"assumption 10: {module.__name__}.{name}"
    zero = [np.zeros(3, dtype=np.float32)]
    with pytest.raises(ZeroDivisionError):  # if this starts passing, revisit the workaround
        compute_clip_model_update([np.zeros(3, dtype=np.float32)], zero, 1.0)
    with flower_internals.exact_dp_clipping():
        params = [np.zeros(3, dtype=np.float32)]
        dp_fixed_clipping.compute_clip_model_update(params, zero, 1.0)
        big = [np.full(4, 10.0, dtype=np.float32)]
        localdp_mod.compute_clip_model_update(big, [np.zeros(4, dtype=np.float32)], 1.0)
    assert np.array_equal(params[0], zero[0])
    assert float(np.linalg.norm(big[0])) == pytest.approx(1.0, rel=1e-6)
    assert dp_fixed_clipping.compute_clip_model_update is compute_clip_model_update  # restored


def test_11_secaggplus_workflow_drives_a_legacy_strategy() -> None:
    from flwr.client.mod.secure_aggregation.secaggplus_mod import secaggplus_mod
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage
    from flwr.server.workflow import SecAggPlusWorkflow
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
    from flwr.server.workflow.constant import Key as WorkflowKey

    from simfl.privacy import secagg

    assert (RECORD_KEY_CONFIGS, Key.STAGE) == (secagg.SECAGG_RECORD, secagg.STAGE_KEY)
    assert Stage.COLLECT_MASKED_VECTORS == secagg.COLLECT_STAGE
    assert (MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD) == ("config", "parameters")
    assert WorkflowKey.CURRENT_ROUND == "current_round"
    setup = inspect.getsource(SecAggPlusWorkflow.setup_stage)
    assert "context.strategy.configure_fit(" in setup and "proxy.node_id" in setup
    unmask = inspect.getsource(SecAggPlusWorkflow.unmask_stage)
    assert (
        "context.strategy.aggregate_fit(" in unmask and "fitres.parameters = parameters" in unmask
    )
    collect = inspect.getsource(secaggplus_mod)
    assert "call_next(msg, ctxt)" in collect and "recorddict_to_fitres" in collect, (
        "assumption 11: secaggplus_mod no longer calls the app with FitIns in the collect stage"
    )


def test_12_reply_sender_is_read_from_the_metadata_dict() -> None:
    from flwr.app import RecordDict
    from flwr.app.message import make_message
    from flwr.app.metadata import Metadata

    metadata = Metadata(
        run_id=1,
        message_id="m",
        src_node_id=5,
        dst_node_id=1,
        reply_to_message_id="",
        group_id="1",
        created_at=0.0,
        ttl=60.0,
        message_type="train",
    )
    reply = make_message(metadata=metadata, content=RecordDict())
    reply.metadata.__dict__["_src_node_id"] = 42
    assert reply.metadata.src_node_id == 42, (
        "assumption 12: Metadata.src_node_id no longer reads _src_node_id; SecAgg+ replies "
        "would name their slot instead of their partition (PartitionAddressedGrid)"
    )


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
def test_14_strategy_server_state_is_in_named_attributes(name: str, expected: dict) -> None:
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
            f"assumption 14: {name}.{attribute} is {type(value).__name__}"
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


def test_15_check_and_log_replies_filters_errors_and_checks_content() -> None:
    with flower_task():
        _check_replies(FedAvg())


def _check_replies(strategy: FedAvg) -> None:
    import numpy as np
    from flwr.app import Error, Message, MetricRecord, RecordDict
    from flwr.serverapp.exception import InconsistentMessageReplies

    def reply(content: RecordDict | None) -> Message:
        request = Message(RecordDict(), dst_node_id=1, message_type="train")
        if content is None:
            return Message(Error(code=0, reason="failed"), reply_to=request)
        return Message(content, reply_to=request)

    good = RecordDict(
        {"arrays": ArrayRecord([np.ones(2)]), "metrics": MetricRecord({"num-examples": 3})}
    )
    contents = flower_internals.valid_train_contents(strategy, [reply(good), reply(None)])
    assert contents == [good], (
        "assumption 15: _check_and_log_replies no longer returns the replies without an error"
    )
    no_weight = RecordDict({"arrays": ArrayRecord([np.ones(2)]), "metrics": MetricRecord({})})
    with pytest.raises(InconsistentMessageReplies):
        flower_internals.valid_train_contents(strategy, [reply(no_weight)])


@pytest.mark.parametrize("side", ["server", "client"])
def test_16_adaptive_clipping_norm_moves_against_the_clipped_fraction(side) -> None:
    import math

    import numpy as np
    from flwr.serverapp.strategy import (
        DifferentialPrivacyClientSideAdaptiveClipping,
        DifferentialPrivacyServerSideAdaptiveClipping,
    )
    from flwr.supercore.differential_privacy import adaptive_clip_inputs_inplace

    flowers = {
        "server": DifferentialPrivacyServerSideAdaptiveClipping,
        "client": DifferentialPrivacyClientSideAdaptiveClipping,
    }[side]
    kwargs = {"initial_clipping_norm": 1.0, "target_clipped_quantile": 0.5, "clip_norm_lr": 0.2}
    # norm_bit is True when the update was clipped.
    assert adaptive_clip_inputs_inplace([np.full(4, 10.0)], 1.0) is True
    original = flowers(FedAvg(), 0.0, 3, **kwargs)
    original._geometric_update(1.0)  # every update clipped
    assert original.clipping_norm == pytest.approx(math.exp(-0.1)), (
        "assumption 16: Flower's adaptive norm no longer shrinks when every update is clipped; "
        "drop simfl.engine.flower_internals.adaptive_clipping_wrapper's override"
    )
    fixed = flower_internals.adaptive_clipping_wrapper(side)(FedAvg(), 0.0, 3, **kwargs)
    assert isinstance(fixed, flowers)
    fixed._geometric_update(1.0)
    assert fixed.clipping_norm == pytest.approx(math.exp(0.1))
    fixed._geometric_update(0.0)  # none clipped: back down
    assert fixed.clipping_norm == pytest.approx(math.exp(0.1) * math.exp(-0.1))


def test_17_in_memory_grid_polls_replies_every_pull_interval() -> None:
    from flwr.superlink.grid import InMemoryGrid

    source = inspect.getsource(InMemoryGrid.send_and_receive)
    assert "time.sleep(self.pull_interval)" in source, (
        "assumption 17: InMemoryGrid no longer sleeps pull_interval between reply polls"
    )
    grid = in_memory_grid(2)
    flower_internals.VirtualClientGrid(grid, 5, grid.get_node_ids())
    assert grid.pull_interval == flower_internals.REPLY_POLL_S


def test_18_engine_moves_messages_in_a_thread_that_polls_every_tenth_of_a_second() -> None:
    from flwr.server.superlink.fleet.vce import vce_api
    from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState

    mover = inspect.getsource(vce_api.add_messages_to_queue)
    assert "state.get_message_ins(node_id=node_id, limit=1)" in mover, (
        "assumption 18: Flower's add_messages_to_queue no longer reads each node's messages "
        "with get_message_ins(limit=1); update _move_messages_when_pushed"
    )
    assert "f_stop.wait(0.1)" in mover, "assumption 18: the engine no longer polls every 0.1 s"
    assert "target=add_messages_to_queue" in inspect.getsource(vce_api.run_api), (
        "assumption 18: run_api no longer starts add_messages_to_queue by its module-level name"
    )
    handing_out = inspect.getsource(InMemoryLinkState.get_message_ins)
    for step in (
        "with self.lock:",
        "for msg_id in list(self.message_ins_store.keys()):",
        "self._check_stored_messages({msg_id})",
        'msg_ins.metadata.delivered_at == ""',
        "delivered_at = now().isoformat()",
        "msg_ins.metadata.delivered_at = delivered_at",
    ):
        assert step in handing_out, (
            f"assumption 18: InMemoryLinkState.get_message_ins no longer does {step!r}; "
            "update flower_internals._undelivered_messages"
        )
    assert vce_api.add_messages_to_queue is not flower_internals._move_messages_when_pushed
    with flower_internals._messages_moved_when_pushed():
        assert vce_api.add_messages_to_queue is flower_internals._move_messages_when_pushed
    assert vce_api.add_messages_to_queue is not flower_internals._move_messages_when_pushed


@contextlib.contextmanager
def routed_train_messages():
    """A two-node in-memory grid and a FedAvg round's train messages routed to its nodes, in a
    Flower task whose sender the link state accepts."""
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.supercore.task_identity import TaskIdentity

    grid = in_memory_grid(2)
    nodes = sorted(grid.get_node_ids())
    virtual = flower_internals.VirtualClientGrid(grid, 5, nodes)
    strategy = FedAvg(fraction_train=0.4, min_train_nodes=2, min_available_nodes=2)
    with flower_task(), flower_internals.seeded_sampling(0):
        TaskIdentity.node_id = SUPERLINK_NODE_ID
        messages = list(strategy.configure_train(1, ArrayRecord({}), ConfigRecord(), virtual))
        pairs = zip(messages, nodes, strict=True)
        yield grid, nodes, [flower_internals._addressed(m, n, 0) for m, n in pairs]


def test_18_a_push_wakes_the_message_mover_at_once() -> None:
    import queue
    import threading
    import time

    moved: queue.Queue = queue.Queue()
    stop = threading.Event()
    with routed_train_messages() as (grid, nodes, routed):
        mover = threading.Thread(
            target=flower_internals._move_messages_when_pushed,
            args=(grid.state, moved, dict.fromkeys(nodes), stop),
        )
        mover.start()
        time.sleep(0.05)  # the mover has looked once and waits
        try:
            started = time.perf_counter()
            grid.push_messages(routed)  # the wrapped push: stores, then wakes the mover
            first = moved.get(timeout=5)
            woke_after = time.perf_counter() - started
            second = moved.get(timeout=5)
        finally:
            stop.set()
            mover.join()
    assert {first.metadata.dst_node_id, second.metadata.dst_node_id} == set(nodes)
    assert woke_after < 0.05  # Flower's 0.1 s look would be 0.05 s late on average
    assert first.metadata.delivered_at and second.metadata.delivered_at
    assert moved.empty()  # each handed out once
    for node in nodes:  # and Flower's own look agrees: nothing left to deliver
        assert grid.state.get_message_ins(node_id=node, limit=None) == []


def test_19_engine_threads_wait_a_second_between_looks_at_their_stop_event() -> None:
    import queue
    import time

    from flwr.server.superlink.fleet.vce import vce_api

    source = inspect.getsource(vce_api)
    assert source.count("get(timeout=1.0)") == 2, (
        "assumption 19: Flower's engine threads no longer wait get(timeout=1.0) on its queues"
    )
    api = inspect.getsource(vce_api.run_api)
    assert api.count("= Queue()") == 2, "assumption 19: run_api no longer makes its queues"
    assert vce_api.Queue is queue.Queue
    with flower_internals._prompt_stop():
        made = vce_api.Queue()
        started = time.perf_counter()
        with pytest.raises(queue.Empty):
            made.get(timeout=1.0)
        assert time.perf_counter() - started < 0.5  # capped at STOP_POLL_S
        made.put("message")
        assert made.get(timeout=1.0) == "message"
    assert vce_api.Queue is queue.Queue


def test_20_a_message_can_be_made_with_given_metadata_and_client_errors_read_as_flowers() -> None:
    """The batch of clients hands each member over as the message it would have received and
    returns each member's reply from its slot; a member that raises gets Flower's error."""
    from flwr.app import Error, Message, MetricRecord, RecordDict
    from flwr.common.constant import ErrorCode
    from flwr.server.superlink.fleet.vce import vce_api

    with flower_task():
        batch = Message(RecordDict(), dst_node_id=5, message_type="train", group_id="7")
        batch.metadata.__dict__["_message_id"] = "abc"  # as the link state assigns it
        member = flower_internals.as_received(batch, RecordDict({"m": MetricRecord({"x": 1})}))
        assert member.metadata is not batch.metadata, "assumption 20: metadata not copied"
        for name in ("message_id", "dst_node_id", "group_id", "message_type", "run_id"):
            assert getattr(member.metadata, name) == getattr(batch.metadata, name), (
                f"assumption 20: Message(metadata=...) no longer keeps {name}"
            )
        assert member.content["m"]["x"] == 1
        reply = Message(RecordDict(), reply_to=member)
        assert reply.metadata.reply_to_message_id == "abc"
        moved = flower_internals.replied_as(reply, 9, error=Error(code=3, reason="r"))
        assert moved.metadata.src_node_id == 9 and moved.has_error()
        assert reply.metadata.src_node_id == 5  # the original is untouched
    worker = inspect.getsource(vce_api.worker)
    wording = 'reason = str(type(ex)) + ":<\'" + str(ex) + "\'>"'
    assert wording in worker, (
        "assumption 20: Flower's engine words a ClientApp's exception differently now; "
        "update flower_internals.client_error"
    )
    assert "e_code = ErrorCode.CLIENT_APP_RAISED_EXCEPTION" in worker
    error = flower_internals.client_error(ValueError("boom"))["simfl.error"]
    assert error["code"] == ErrorCode.CLIENT_APP_RAISED_EXCEPTION
    assert error["reason"] == "<class 'ValueError'>:<'boom'>"


def test_21_engine_stores_replies_in_a_thread_the_server_then_pulls() -> None:
    from flwr.server.superlink.fleet.vce import vce_api
    from flwr.superlink.grid import InMemoryGrid

    storer = inspect.getsource(vce_api.put_message_into_state)
    for step in ("queue.get(timeout=1.0)", "state.store_message_res(message_reply)"):
        assert step in storer, (
            f"assumption 21: Flower's put_message_into_state no longer does {step!r}; "
            "update flower_internals._store_replies_and_wake"
        )
    assert "target=put_message_into_state" in inspect.getsource(vce_api.run_api), (
        "assumption 21: run_api no longer starts put_message_into_state by its module name"
    )
    waits = inspect.getsource(InMemoryGrid.send_and_receive)
    for step in ("self.push_messages(messages)", "self.pull_messages(msg_ids)"):
        assert step in waits, (
            f"assumption 21: InMemoryGrid.send_and_receive no longer does {step!r}; "
            "update flower_internals._replies_awaited"
        )
    with flower_internals._replies_wake_the_server():
        assert vce_api.put_message_into_state is flower_internals._store_replies_and_wake
    assert vce_api.put_message_into_state is not flower_internals._store_replies_and_wake


def test_21_a_stored_reply_wakes_the_server_at_once(monkeypatch) -> None:
    import queue
    import threading
    import time
    import uuid

    from flwr.app import Message, RecordDict

    replies: queue.Queue = queue.Queue()
    stop = threading.Event()
    got: dict[str, object] = {}
    monkeypatch.setattr(flower_internals, "REPLY_LOOK_S", 30.0)  # only a wake can be prompt
    with routed_train_messages() as (grid, nodes, routed):
        storer = threading.Thread(
            target=flower_internals._store_replies_and_wake, args=(grid.state, replies, stop)
        )
        server = threading.Thread(
            target=lambda: got.update(
                replies=flower_internals._replies_awaited(grid, routed, 10),
                returned=time.perf_counter(),
            )
        )
        storer.start()
        server.start()
        try:
            delivered = []
            while len(delivered) < 2:  # as the engine's mover hands them out
                for node in nodes:
                    delivered += grid.state.get_message_ins(node_id=node, limit=None)
            time.sleep(0.3)  # the server has looked and waits
            for message in delivered:
                reply = Message(RecordDict(), reply_to=message)
                reply.metadata.__dict__["_message_id"] = str(uuid.uuid4())  # as vce_api does
                replies.put(reply)
            sent = time.perf_counter()
            server.join(timeout=10)
        finally:
            stop.set()
            storer.join()
    assert len(got["replies"]) == 2  # type: ignore[arg-type]
    assert {r.metadata.src_node_id for r in got["replies"]} == set(nodes)  # type: ignore[union-attr]
    assert got["returned"] - sent < 5  # type: ignore[operator]  # woken, not after 30 s
