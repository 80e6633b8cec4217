"""Wake-ups instead of polls between the server and Flower's engine threads.

Flower's simulation hands messages between the ServerApp and the actors through an in-memory
link state that both sides poll: the engine looks for new messages every 0.1 s and the
server's ``InMemoryGrid`` looks for replies every ``pull_interval`` (0.1 s). Each look costs an
exchange 50 ms on average. Here a push wakes the engine's message mover at once, and a stored
reply wakes the server's wait (:func:`replies_awaited`, which :class:`~simfl.flower_compat.
grid.VirtualClientGrid` uses instead of ``InMemoryGrid.send_and_receive``).

Assumptions (contract-tested in ``test_wakeups.py``):

- ``engine-moves-messages-in-a-polling-thread``: ``vce_api.run_api`` runs
  ``add_messages_to_queue(state, queue, nodes_mapping, f_stop)``, looked up by that
  module-level name, in a thread that moves each node's new messages
  (``state.get_message_ins(node_id=..., limit=1)``) to the workers' queue and then waits
  ``f_stop.wait(0.1)``: every exchange starts up to 0.1 s late, and each look scans the
  whole message store once per node (``InMemoryLinkState.get_message_ins`` walks
  ``message_ins_store`` under ``state.lock``, dropping expired messages with
  ``_check_stored_messages({id})``, and takes those whose ``metadata.delivered_at`` is ``""``,
  then stamps ``delivered_at = now().isoformat()``). ``InMemoryGrid`` stores messages through
  ``self.push_messages``, so wrapping that on the instance (:func:`waking_the_engine`) can wake
  a replacement of the thread that does the same in one pass over the store
  (:func:`messages_moved_when_pushed`).
- ``engine-stores-replies-in-a-thread-the-server-pulls``: ``vce_api.run_api`` runs
  ``put_message_into_state(state, queue, f_stop)``, looked up by that module-level name, in a
  thread that takes each reply from the workers' queue (``queue.get(timeout=1.0)``) and stores
  it with ``state.store_message_res(reply)``; ``InMemoryGrid.send_and_receive`` pushes with
  ``push_messages`` and finds the replies with ``pull_messages(ids)`` (public ``Grid`` API),
  sleeping ``pull_interval`` between looks. :func:`store_replies_and_wake` stores as Flower
  does and then wakes :func:`replies_awaited`, which pushes and pulls the same way.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flwr.app import Message
from flwr.superlink.grid import InMemoryGrid

from simfl.flower_compat.patching import replaced

#: Set when the server has stored new messages: wakes the engine's message mover.
_MESSAGES_PUSHED = threading.Event()
#: Set when the engine has stored a reply: wakes the server's wait for replies.
_REPLY_STORED = threading.Event()
#: The longest the server waits between looks for replies when nothing wakes it.
REPLY_LOOK_S = 0.1


def waking_the_engine(push: Any) -> Any:
    """``push`` (a grid's ``push_messages``), then wake the engine to move the messages."""

    def push_and_wake(messages: Iterable[Message]) -> Iterable[str]:
        ids = push(messages)
        _MESSAGES_PUSHED.set()
        return ids

    return push_and_wake


def move_messages_when_pushed(state: Any, queue: Any, nodes_mapping: Any, f_stop: Any) -> None:
    """Flower's ``add_messages_to_queue`` (``engine-moves-messages-in-a-polling-thread``),
    woken as soon as the server pushes messages (it still looks every 0.1 s otherwise)."""
    nodes = set(nodes_mapping)
    while not f_stop.is_set():
        for message in _undelivered_messages(state, nodes):
            queue.put(message)
        _MESSAGES_PUSHED.wait(0.1)
        _MESSAGES_PUSHED.clear()  # a push from here on is still found by the next look


def _undelivered_messages(state: Any, nodes: set[int]) -> list[Message]:
    """What ``state.get_message_ins(node_id, limit=None)`` hands out for each of ``nodes``, in
    one pass over the store instead of one per node, whose cost (the cohort's nodes times the
    messages in flight) grows with the square of the cohort."""
    from flwr.supercore.date import now

    with state.lock:
        waiting = [
            message_id
            for message_id, message in state.message_ins_store.items()
            if message.metadata.delivered_at == "" and message.metadata.dst_node_id in nodes
        ]
        found = []
        for message_id in waiting:
            state._check_stored_messages({message_id})  # drops it if it has expired
            if (message := state.message_ins_store.get(message_id)) is not None:
                found.append(message)
    delivered_at = now().isoformat()
    for message in found:
        message.metadata.delivered_at = delivered_at
    return found


def store_replies_and_wake(state: Any, replies: Any, f_stop: Any) -> None:
    """Flower's ``put_message_into_state``
    (``engine-stores-replies-in-a-thread-the-server-pulls``), waking the server's wait for
    replies (:func:`replies_awaited`) each time it has stored one."""
    while not f_stop.is_set():
        try:
            reply = replies.get(timeout=1.0)
        except queue.Empty:
            continue
        state.store_message_res(reply)
        _REPLY_STORED.set()


def replies_awaited(
    grid: InMemoryGrid,
    messages: list[Message],
    timeout: float,
    abandoned: Callable[[], bool] = lambda: False,
) -> list[Message]:
    """``InMemoryGrid.send_and_receive`` (push, then pull until every reply is in, ``timeout``
    has passed or the caller has ``abandoned`` the exchange), looking again as soon as a reply
    is stored instead of every ``pull_interval``. The event is cleared before each look, so a
    reply stored during a look wakes the next wait at once."""
    waiting = set(grid.push_messages(messages))
    deadline = time.monotonic() + timeout
    replies: list[Message] = []
    while waiting:
        _REPLY_STORED.clear()
        found = list(grid.pull_messages(waiting))
        replies += found
        waiting -= {reply.metadata.reply_to_message_id for reply in found}
        left = deadline - time.monotonic()
        if not waiting or left <= 0 or abandoned():
            break
        _REPLY_STORED.wait(min(left, REPLY_LOOK_S))
    return replies


def messages_moved_when_pushed() -> contextlib.AbstractContextManager[None]:
    """Start each exchange as soon as its messages are stored
    (``engine-moves-messages-in-a-polling-thread``)."""
    from flwr.server.superlink.fleet.vce import vce_api

    return replaced([(vce_api, "add_messages_to_queue", move_messages_when_pushed)])


def replies_wake_the_server() -> contextlib.AbstractContextManager[None]:
    """Wake the server's wait for replies as each one is stored
    (``engine-stores-replies-in-a-thread-the-server-pulls``)."""
    from flwr.server.superlink.fleet.vce import vce_api

    return replaced([(vce_api, "put_message_into_state", store_replies_and_wake)])
