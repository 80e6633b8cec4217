"""Contract tests for :mod:`simfl.flower_compat.wakeups`, two per named assumption: Flower
still does what the module replaces, and the replacement wakes at once."""

from __future__ import annotations

import inspect
import queue
import threading
import time
import uuid

import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp.strategy import FedAvg

from simfl.flower_compat import wakeups
from simfl.flower_compat.grid import VirtualClientGrid, addressed, seeded_sampling


@pytest.fixture
def routed_train_messages(flower_task, in_memory_grid):
    """A two-node in-memory grid and a FedAvg round's train messages routed to its nodes, in a
    Flower task whose sender the link state accepts."""
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.supercore.task_identity import TaskIdentity

    grid = in_memory_grid(2)
    nodes = sorted(grid.get_node_ids())
    virtual = VirtualClientGrid(grid, 5, nodes)
    strategy = FedAvg(fraction_train=0.4, min_train_nodes=2, min_available_nodes=2)
    with flower_task(), seeded_sampling(0):
        TaskIdentity.node_id = SUPERLINK_NODE_ID
        messages = list(strategy.configure_train(1, ArrayRecord({}), ConfigRecord(), virtual))
        pairs = zip(messages, nodes, strict=True)
        yield grid, nodes, [addressed(m, n, 0) for m, n in pairs]


def test_engine_moves_messages_in_a_polling_thread() -> None:
    from flwr.server.superlink.fleet.vce import vce_api
    from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState

    name = "engine-moves-messages-in-a-polling-thread"
    mover = inspect.getsource(vce_api.add_messages_to_queue)
    assert "state.get_message_ins(node_id=node_id, limit=1)" in mover, (
        f"{name}: Flower's add_messages_to_queue no longer reads each node's messages with "
        "get_message_ins(limit=1); update wakeups.move_messages_when_pushed"
    )
    assert "f_stop.wait(0.1)" in mover, f"{name}: the engine no longer polls every 0.1 s"
    assert "target=add_messages_to_queue" in inspect.getsource(vce_api.run_api), (
        f"{name}: run_api no longer starts add_messages_to_queue by its module-level name"
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
            f"{name}: InMemoryLinkState.get_message_ins no longer does {step!r}; update "
            "wakeups._undelivered_messages"
        )
    assert vce_api.add_messages_to_queue is not wakeups.move_messages_when_pushed
    with wakeups.messages_moved_when_pushed():
        assert vce_api.add_messages_to_queue is wakeups.move_messages_when_pushed
    assert vce_api.add_messages_to_queue is not wakeups.move_messages_when_pushed


def test_engine_moves_messages_in_a_polling_thread_a_push_wakes_the_mover(
    routed_train_messages,
) -> None:
    moved: queue.Queue = queue.Queue()
    stop = threading.Event()
    grid, nodes, routed = routed_train_messages
    mover = threading.Thread(
        target=wakeups.move_messages_when_pushed,
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


def test_engine_stores_replies_in_a_thread_the_server_pulls() -> None:
    from flwr.server.superlink.fleet.vce import vce_api
    from flwr.superlink.grid import InMemoryGrid

    name = "engine-stores-replies-in-a-thread-the-server-pulls"
    storer = inspect.getsource(vce_api.put_message_into_state)
    for step in ("queue.get(timeout=1.0)", "state.store_message_res(message_reply)"):
        assert step in storer, (
            f"{name}: Flower's put_message_into_state no longer does {step!r}; update "
            "wakeups.store_replies_and_wake"
        )
    assert "target=put_message_into_state" in inspect.getsource(vce_api.run_api), (
        f"{name}: run_api no longer starts put_message_into_state by its module name"
    )
    waits = inspect.getsource(InMemoryGrid.send_and_receive)
    for step in ("self.push_messages(messages)", "self.pull_messages(msg_ids)"):
        assert step in waits, (
            f"{name}: InMemoryGrid.send_and_receive no longer does {step!r}; update "
            "wakeups.replies_awaited"
        )
    with wakeups.replies_wake_the_server():
        assert vce_api.put_message_into_state is wakeups.store_replies_and_wake
    assert vce_api.put_message_into_state is not wakeups.store_replies_and_wake


def test_engine_stores_replies_in_a_thread_the_server_pulls_a_reply_wakes_the_server(
    routed_train_messages, monkeypatch
) -> None:
    replies: queue.Queue = queue.Queue()
    stop = threading.Event()
    got: dict[str, object] = {}
    monkeypatch.setattr(wakeups, "REPLY_LOOK_S", 30.0)  # only a wake can be prompt
    grid, nodes, routed = routed_train_messages
    storer = threading.Thread(
        target=wakeups.store_replies_and_wake, args=(grid.state, replies, stop)
    )
    server = threading.Thread(
        target=lambda: got.update(
            replies=wakeups.replies_awaited(grid, routed, 10), returned=time.perf_counter()
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
