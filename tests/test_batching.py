"""Several clients per actor call: the encoding, the ClientApp's batch mod on real data and
torch, and the virtual-client grid's routing of a batched exchange back to one reply per client
from its own slot. The end-to-end equivalence (a batched run and a one-client-per-call run give
the same metrics, bit for bit) is in tests/test_server_callbacks.py."""

from __future__ import annotations

import numpy as np
import pytest
from flower_helpers import RUN_ID, flower_task
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from test_client_training import data, make_plan  # noqa: F401 - fixture

from simfl.engine import client_app
from simfl.engine.batching import (
    BATCH_KEY,
    error_record,
    even_batches,
    member_contents,
    member_error,
    pack_contents,
)
from simfl.engine.concurrency import calls_per_exchange, evaluation_overlap
from simfl.engine.server_app import initial_shared_arrays
from simfl.flower_compat import grid as compat_grid
from simfl.schema.sections import ResourcesConfig


@pytest.fixture(autouse=True)
def _task():
    with flower_task():
        yield


def _arrays(value: float) -> ArrayRecord:
    return ArrayRecord({"w": Array(np.full(3, value, dtype=np.float32))})


def test_a_batch_stores_a_shared_record_once_and_gives_every_member_its_own() -> None:
    model = _arrays(1.0)
    contents = [
        RecordDict({"arrays": model, "config": ConfigRecord({"partition-id": p})})
        for p in (7, 3, 9)
    ]
    packed = pack_contents(contents)
    assert sorted(packed) == ["arrays", "config#0", "config#1", "config#2", BATCH_KEY]
    members = member_contents(packed)
    assert [m["config"]["partition-id"] for m in members] == [7, 3, 9]
    assert all(m["arrays"] is model for m in members)  # converted once on the client


def test_members_without_a_common_record_travel_whole_and_failures_travel_as_errors() -> None:
    replies = [
        RecordDict({"arrays": _arrays(2.0), "metrics": MetricRecord({"n": 4})}),
        error_record(Error(code=2, reason="client 5 raised")),
    ]
    first, second = member_contents(pack_contents(replies))
    assert first["arrays"]["w"].numpy().tolist() == [2.0, 2.0, 2.0]
    assert first["metrics"]["n"] == 4 and member_error(first) is None
    failure = member_error(second)
    assert failure is not None and (failure.code, failure.reason) == (2, "client 5 raised")


@pytest.mark.parametrize(
    ("count", "batches", "sizes"),
    [(10, 8, [2, 2, 1, 1, 1, 1, 1, 1]), (100, 8, [13] * 4 + [12] * 4), (3, 8, [1, 1, 1])],
)
def test_even_batches_keep_order_and_differ_by_one_at_most(count, batches, sizes) -> None:
    runs = even_batches(count, batches)
    assert [len(run) for run in runs] == sizes
    assert [i for run in runs for i in run] == list(range(count))


def test_calls_per_exchange_gives_each_actor_four_calls_unless_told() -> None:
    auto = ResourcesConfig()
    assert calls_per_exchange(100, auto, actors=2) == 8
    assert calls_per_exchange(5, auto, actors=2) == 5  # never more calls than clients
    assert calls_per_exchange(100, auto, actors=0) == 100  # no Ray: one call per client
    assert calls_per_exchange(100, ResourcesConfig(clients_per_call=30), actors=2) == 4
    assert calls_per_exchange(100, ResourcesConfig(clients_per_call=1), actors=2) == 100


class InProcessGrid:
    """Delivers each message to a ClientApp in this process, as Flower's engine would (a
    raising ClientApp becomes an error reply); replies arrive in reverse order."""

    def __init__(self, app) -> None:
        self.app, self.sent = app, []

    def get_node_ids(self) -> list[int]:
        return []

    def send_and_receive(self, messages, *, timeout: float) -> list[Message]:
        replies = []
        for message in messages:
            self.sent.append(message)
            node = message.metadata.dst_node_id
            context = Context(RUN_ID, node, {"partition-id": node}, RecordDict(), {})
            try:
                replies.append(self.app(message, context))
            except Exception as error:  # noqa: BLE001 - as vce_api.worker does
                replies.append(Message(Error(code=0, reason=str(error)), reply_to=message))
        return replies[::-1]


def _train_messages(plan, cids: list[int], arrays: ArrayRecord) -> list[Message]:
    config = ConfigRecord(plan.scenario.strategy.client_train_config() | {"server-round": 1})
    content = RecordDict({"arrays": arrays, "config": config})
    return [Message(content, dst_node_id=cid, message_type=MessageType.TRAIN) for cid in cids]


def _exchange(plan, calls: int, cids: list[int], app=None):
    grid = InProcessGrid(app or client_app.build_client_app(plan))
    virtual = compat_grid.VirtualClientGrid(grid, 2, [11, 12], lambda n: calls)
    replies = virtual.send_and_receive(
        _train_messages(plan, cids, initial_shared_arrays(plan)), timeout=60
    )
    return grid, virtual, replies


def test_a_batched_exchange_trains_each_client_as_alone_and_replies_from_its_slot(
    data,  # noqa: F811 - the fixture
    tmp_path,
) -> None:
    plan = make_plan(data, tmp_path, {"name": "fedavg"})
    one_call, virtual, batched = _exchange(plan, 1, [1, 0])
    assert len(one_call.sent) == 1 and BATCH_KEY in one_call.sent[0].content
    assert one_call.sent[0].metadata.dst_node_id == 11  # the first member's slot
    separate, _, alone = _exchange(plan, 2, [1, 0])
    assert len(separate.sent) == 2 and all(BATCH_KEY not in m.content for m in separate.sent)
    assert {r.metadata.src_node_id for r in batched} == {11, 12}
    assert virtual.partition_of == {11: 0, 12: 1}
    by_partition = lambda replies: {  # noqa: E731
        virtual.partition_of[r.metadata.src_node_id]: r.content for r in replies
    }
    for partition, content in by_partition(batched).items():
        twin = by_partition(alone)[partition]
        assert content["metrics"]["num-examples"] == twin["metrics"]["num-examples"] > 0
        assert content["metrics"]["train_loss"] == twin["metrics"]["train_loss"]
        for key, array in content["arrays"].items():
            assert array.numpy().tobytes() == twin["arrays"][key].numpy().tobytes()


def test_a_member_that_raises_fails_alone_and_a_lost_batch_fails_every_member(
    data,  # noqa: F811 - the fixture
    tmp_path,
) -> None:
    plan = make_plan(data, tmp_path, {"name": "fedavg"})
    seen: list[int] = []

    def fail_partition_one(message: Message, context: Context, call_next) -> Message:
        seen.append(compat_grid.message_partition(message))  # a per-client mod
        if seen[-1] == 1:
            raise RuntimeError("client 1 lost its data")
        return call_next(message, context)

    app = ClientApp(mods=[client_app.batch_mod])
    app.train(mods=[fail_partition_one])(lambda m, c: client_app.handle_train(plan, m, c))
    _, virtual, replies = _exchange(plan, 1, [0, 1], app)
    assert sorted(seen) == [0, 1]  # the mod ran once per member
    failed = {virtual.partition_of[r.metadata.src_node_id]: r for r in replies if r.has_error()}
    assert list(failed) == [1]
    assert "client 1 lost its data" in failed[1].error.reason
    assert failed[1].error.code == 2  # CLIENT_APP_RAISED_EXCEPTION, as Flower reports it

    def crash(message: Message, context: Context) -> Message:
        raise RuntimeError("actor died")

    _, virtual, replies = _exchange(plan, 1, [0, 1], crash)
    assert len(replies) == 2 and all(r.has_error() for r in replies)
    assert {virtual.partition_of[r.metadata.src_node_id] for r in replies} == {0, 1}


def test_evaluation_overlaps_on_the_driver_only_beside_a_core_no_actor_takes() -> None:
    assert evaluation_overlap("auto", 1.0, on_gpu=False) == "driver"  # 2 cores, one actor
    assert evaluation_overlap("auto", 0.0, on_gpu=False) == "actors"  # 2 cores, two actors
    assert evaluation_overlap("auto", 0.5, on_gpu=False) == "actors"
    assert evaluation_overlap("auto", 0.0, on_gpu=True) == "off"  # GPU actors: other bits
    assert evaluation_overlap("driver", 0.0, on_gpu=False) == "driver"
    assert evaluation_overlap("off", 8.0, on_gpu=False) == "off"
