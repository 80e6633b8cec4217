"""Everything simfl relies on that Flower does not offer as public API, in one module.

Flower 1.42's simulation engine has no hook for what a benchmark needs: reusing actors across
runs, seeding node sampling, mapping node ids to partitions in a stable order. Each piece here
leans on one Flower internal; ``tests/test_flower_contract.py`` checks every assumption by
name, so a Flower upgrade that changes one fails there, loudly, instead of silently changing
results. Nothing else in simfl imports Flower's private modules.

Assumptions (each tested):
1. ``flwr.simulation.run_simulation(server_app, client_app, num_supernodes, backend_config,
   verbose_logging)`` runs both apps in this process and raises ``RuntimeError`` from the
   ServerApp's exception.
2. ``start_vce`` imports ``raybackend.RayBackend`` when it starts, by name, so pointing the
   module attribute at a subclass makes the engine use it.
3. ``RayBackend`` keeps its pool in ``self.pool`` and its settings in ``client_resources`` and
   ``actor_kwargs``; ``build(app_fn)`` makes the pool and ``terminate()`` kills it and shuts Ray.
4. ``BasicActorPool(actor_type, client_resources, actor_kwargs)`` creates actors with
   ``create_actor_fn``, holds the idle ones in ``pool`` and counts ``num_actors``; its
   ``terminate_all_actors`` kills only idle actors (so we track every actor we create).
5. Flower's strategies sample nodes with the module-level ``random.sample`` over
   ``grid.get_node_ids()`` (``strategy_utils.sample_nodes``).
6. Flower's name for a partition id (``PARTITION_ID_KEY``), which simfl puts in each message.
7. Flower's strategies sample ``max(int(len(node_ids) * fraction), min_nodes)`` nodes per
   round (the cohort; simfl registers that many nodes, see :func:`cohort_size`).
8. Strategies read ``fraction_train``/``min_train_nodes`` (``fraction_evaluate``/
   ``min_evaluate_nodes``) and ``min_available_nodes`` as attributes when ``configure_*`` runs,
   and sample nothing when the fraction is 0.0 (used by :func:`fixed_cohort`).
9. Flower's DP noise (``flwr.supercore.differential_privacy.add_gaussian_noise_inplace``,
   used by the DP strategy wrappers and ``LocalDpMod``, and the adaptive wrappers' noisy
   clipped count) draws from numpy's global generator (``np.random.normal``).
10. Flower's clipping functions (``compute_clip_model_update``,
   ``compute_adaptive_clip_model_update``, ``adaptive_clip_inputs_inplace`` of
   ``flwr.supercore.differential_privacy``) are imported by name into the modules that use
   them (``dp_fixed_clipping``, ``dp_adaptive_clipping``, ``centraldp_mods``, ``localdp_mod``);
   they divide by the update's norm (an all-zero update raises ``ZeroDivisionError``) and
   rebuild every update as ``global + (reply - global)``, even when nothing is clipped.
11. SecAgg+ (legacy workflow path only, bridged in :mod:`simfl.privacy.secagg`, which keeps
   its Flower imports local to that module): ``SecAggPlusWorkflow(grid, LegacyContext)`` calls
   only ``context.strategy.configure_fit(round, parameters, client_manager)`` (then reads
   ``proxy.node_id``) and ``aggregate_fit(round, results, failures)`` with every result's
   ``parameters`` set to the unmasked weighted mean; it reads the round from
   ``context.state.config_records["config"]["current_round"]``; it sends its stage in the
   ``"secaggplus_configs"`` config record (``"stage"``, ``"collect_masked_vectors"`` is the one that
   calls the client app) and the FitIns as legacy ``fitins.*`` records; a halted protocol
   returns without calling ``aggregate_fit``.
12. A reply's ``metadata.src_node_id`` reads ``metadata.__dict__["_src_node_id"]`` (no setter).
13. ``vce_api.run_api`` runs one worker thread per actor (``backend.num_workers``) in a
   ``ThreadPoolExecutor()`` it looks up by that module-level name, so Python's default cap of
   ``min(32, cpu_count + 4)`` threads silently limits how many clients run at once (6 on a
   2-core machine, 20 on a 16-CPU SLURM task) whatever the actor pool's size.
14. Flower's strategies keep their server state in plain attributes, each ``None`` until the
   first round: ``current_arrays`` (FedOpt family: dict of ndarrays; FedAvgM, QFedAvg:
   ``ArrayRecord``), ``m_t`` and ``v_t`` (FedAdam, FedYogi, FedAdagrad: dicts of ndarrays),
   ``momentum_vector`` (FedAvgM: list of ndarrays). Nothing else carries over between rounds.
15. ``Strategy._check_and_log_replies(replies, is_train=True)`` returns ``(valid, errors)``:
   the replies without an error, after checking their contents as the strategy's own
   ``aggregate_train`` does (``InconsistentMessageReplies`` when, e.g., the weighting key is
   missing).
16. Flower's adaptive-clipping wrappers move the norm in ``_geometric_update(clipped_fraction)``
   as ``clipping_norm *= exp(-clip_norm_lr * (clipped_fraction - target_clipped_quantile))``,
   where ``clipped_fraction`` is the noisy fraction of replies whose update *was clipped*
   (``norm_bit`` is ``scaling_factor < 1``). Andrew et al. 2021 use the fraction *not* clipped
   there, so Flower's sign is inverted: a norm that clips every update shrinks further, one that
   clips none grows, and the norm runs away from the target. :func:`adaptive_clipping_wrapper`
   overrides that one method with the paper's direction.
17. ``InMemoryGrid.send_and_receive`` sleeps ``self.pull_interval`` seconds between polls for
   replies (a constructor argument, 0.1 s by default, that the simulation does not expose).
18. ``vce_api.run_api`` runs ``add_messages_to_queue(state, queue, nodes_mapping, f_stop)``,
   looked up by that module-level name, in a thread that moves each node's new messages
   (``state.get_message_ins(node_id=..., limit=1)``) to the workers' queue and then waits
   ``f_stop.wait(0.1)``: every exchange started up to 0.1 s late, and each look scanned the
   whole message store once per node (``InMemoryLinkState.get_message_ins`` walks
   ``message_ins_store`` under ``state.lock``, dropping expired messages with
   ``_check_stored_messages({id})``, and takes those whose ``metadata.delivered_at`` is ``""``,
   then stamps ``delivered_at = now().isoformat()``). ``InMemoryGrid``'s ``send_and_receive``
   stores messages through ``self.push_messages``, so wrapping that on the instance can wake a
   replacement of the thread that does the same in one pass over the store
   (:func:`_messages_moved_when_pushed`).
19. ``vce_api.run_api`` makes its two message queues with the module-level name ``Queue``; its
   worker threads and its reply injector wait on them with ``get(timeout=1.0)`` and look at
   ``f_stop`` only between waits, so a simulation returned 0.5 s after its ServerApp ended on
   average (up to 1 s): in a sweep, every cell. :func:`_prompt_stop` caps that wait.
20. ``Message(metadata=..., content=... | error=...)`` (documented as internal) makes a
   message with exactly that metadata: simfl's batch of clients (:mod:`simfl.engine.batching`)
   hands each member to the ClientApp as the message it would have received alone
   (:func:`as_received`) and returns each member's reply as coming from its own slot
   (:func:`replied_as`). A ClientApp exception reaches the server as
   ``Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, str(type(ex)) + ":<'" + str(ex) + "'>")``
   (``vce_api.worker``), which :func:`client_error` reproduces for a member that raised.
21. ``vce_api.run_api`` runs ``put_message_into_state(state, queue, f_stop)``, looked up by that
   module-level name, in a thread that takes each reply from the workers' queue
   (``queue.get(timeout=1.0)``) and stores it with ``state.store_message_res(reply)``; the
   server finds it with ``InMemoryGrid.pull_messages(ids)`` (public ``Grid`` API, as is
   ``push_messages``). :func:`_store_replies_and_wake` does the same and then wakes the
   server's wait for replies (:func:`_replies_awaited`), which otherwise looked every 5 ms
   (assumption 17), 200 times a second on cores the actors fill.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import queue
import random
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import PARTITION_ID_KEY
from flwr.serverapp import Grid, ServerApp
from flwr.superlink.grid import InMemoryGrid

from simfl.engine.batching import (
    error_record,
    even_batches,
    member_contents,
    member_error,
    pack_contents,
)
from simfl.errors import SimflError

if TYPE_CHECKING:
    from simfl.engine.central_slices import SideTask
    from simfl.engine.runtime import RaySession

__all__ = [
    "PARTITION_ID_KEY",
    "ActorPools",
    "VirtualClientGrid",
    "as_received",
    "client_error",
    "cohort_size",
    "fixed_cohort",
    "message_partition",
    "replied_as",
    "run_flower_simulation",
    "seeded_numpy_global",
    "exact_dp_clipping",
    "restore_strategy_server_state",
    "seeded_sampling",
    "strategy_server_state",
    "valid_train_contents",
]


#: How often the server looks for replies (assumption 17). Flower's InMemoryGrid sleeps 0.1 s
#: between looks, so every exchange waited 50 ms on average after its last reply; a look is
#: a dictionary lookup per message in flight.
REPLY_POLL_S = 0.005


class VirtualClientGrid:
    """Clients are partitions; Flower's nodes are slots that serve whichever partition a
    message names. No per-node discovery, so start-up does not grow with the population.

    Flower's strategies sample from ``get_node_ids()``: here that is the partition ids
    ``0..N-1`` (the same order the partitions have, so a seeded draw picks the same clients as
    sampling nodes sorted by partition did). :meth:`send_and_receive` routes the k-th sampled
    partition (in partition order) to the k-th slot, adding ``partition-id`` to a copy of the
    message's config record; ``partition_of`` then maps each reply's ``src_node_id`` (a slot)
    to the partition it served, for that exchange. Only ``cohort`` slots exist (Flower
    registers one node per slot), so 10^5 virtual clients cost no more nodes, actors or
    messages than the cohort does. With ``calls_for``, the routed messages of an exchange go
    out in fewer actor calls, several partitions per message (:mod:`simfl.engine.batching`),
    and come back as one reply per partition, from its slot, as without batching. The last
    ``side_slots`` slots serve no partition: they carry side tasks (central evaluation's
    slices, :mod:`simfl.engine.central_slices`) behind an exchange's clients (:meth:`exchange`).
    """

    def __init__(
        self,
        grid: Grid,
        num_partitions: int,
        slots: list[int],
        calls_for: Callable[[int], int] | None = None,
        side_slots: int = 0,
    ) -> None:
        self._grid = grid
        self._partitions = list(range(num_partitions))
        ordered = sorted(slots)
        cut = len(ordered) - min(side_slots, len(ordered))
        self._slots, self.side_slots = ordered[:cut], ordered[cut:]
        self._available = self._partitions
        self.partition_of: dict[int, int] = {}
        self._pinned: dict[int, int] | None = None  # partition -> slot, for multi-stage rounds
        # How many actor calls an exchange of n messages goes out in (batching.py); n: none.
        self._calls_for = calls_for or (lambda count: count)
        if isinstance(grid, InMemoryGrid):  # assumptions 17 and 18
            grid.pull_interval = REPLY_POLL_S
            grid.push_messages = _waking_the_engine(grid.push_messages)  # type: ignore[method-assign]

    def get_node_ids(self) -> list[int]:
        return self._available

    def set_available(self, partitions: list[int] | None) -> None:
        """Only these partitions (ascending) can be sampled from now on; None: all of them."""
        self._available = self._partitions if partitions is None else list(partitions)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float) -> list[Message]:
        """One reply per message, each from the slot its partition was routed to; several
        partitions share an actor call when ``calls_for`` says so (never in a multi-stage
        protocol, whose node-side state lives in each slot's context)."""
        return self.exchange(messages, (), timeout=timeout)[0]

    def exchange(
        self, messages: Iterable[Message], side: Sequence[SideTask], *, timeout: float
    ) -> tuple[list[Message], list[Message | None]]:
        """:meth:`send_and_receive` of ``messages``, with ``side`` tasks queued behind them (the
        engine hands queued messages to whichever actor is free, in the order they were sent:
        assumption 18's mover keeps the store's order): the clients' replies, and each side
        task's reply (None where none came back in time)."""
        if len(side) > len(self.side_slots):
            raise SimflError(f"{len(side)} side tasks, but {len(self.side_slots)} side slots")
        routed = self._route(messages)
        calls = self._calls_for(len(routed)) if self._pinned is None else len(routed)
        runs = even_batches(len(routed), calls) if routed else []
        groups = [[routed[i] for i in run] for run in runs]
        outgoing = [group[0] if len(group) == 1 else _batched(group) for group in groups]
        by_slot = {group[0].metadata.dst_node_id: group for group in groups}
        side_messages = [
            Message(content=task.content, dst_node_id=slot, message_type=task.message_type)
            for task, slot in zip(side, self.side_slots, strict=False)
        ]
        replies = self._deliver(outgoing + side_messages, timeout)
        from_side: dict[int, Message] = {}
        for_clients: list[Message] = []
        for reply in replies:
            slot = reply.metadata.src_node_id
            if slot in by_slot:
                group = by_slot[slot]
                for_clients += _unbatched(reply, group) if len(group) > 1 else [reply]
            else:
                from_side[slot] = reply
        side_replies = [from_side.get(slot) for slot in self.side_slots[: len(side)]]
        return for_clients, side_replies

    def _deliver(self, messages: list[Message], timeout: float) -> list[Message]:
        if isinstance(self._grid, InMemoryGrid):  # assumption 21
            return _replies_awaited(self._grid, messages, timeout)
        return list(self._grid.send_and_receive(messages, timeout=timeout))

    def _route(self, messages: Iterable[Message]) -> list[Message]:
        """The k-th partition (ascending) addressed to the k-th slot, or to its pinned one."""
        ordered = sorted(messages, key=lambda message: message.metadata.dst_node_id)
        if len(ordered) > len(self._slots):
            raise SimflError(
                f"{len(ordered)} messages in one exchange, but only {len(self._slots)} slots"
            )
        self.partition_of = {}
        routed = []
        for rank, message in enumerate(ordered):
            partition = message.metadata.dst_node_id
            slot = self._slot_for(partition, rank)
            self.partition_of[slot] = partition
            routed.append(_addressed(message, slot, partition))
        return routed

    def _slot_for(self, partition: int, rank: int) -> int:
        if self._pinned is None:
            return self._slots[rank]
        if partition not in self._pinned:
            taken = set(self._pinned.values())
            self._pinned[partition] = next(s for s in self._slots if s not in taken)
        return self._pinned[partition]

    @contextlib.contextmanager
    def addressed_by_partition(self) -> Iterator[PartitionAddressedGrid]:
        """A view for protocols of several exchanges per round (SecAgg+): a partition keeps
        its slot (so its node-side protocol state) until the block ends, and replies name
        the partition as their sender, as the protocol expects."""
        self._pinned = {}
        try:
            yield PartitionAddressedGrid(self)
        finally:
            self._pinned = None


#: Set when the server has stored new messages: wakes the engine's message mover (assumption 18).
_MESSAGES_PUSHED = threading.Event()


def _waking_the_engine(push: Any) -> Any:
    """``push`` (a grid's ``push_messages``), then wake the engine to move the messages."""

    def push_and_wake(messages: Iterable[Message]) -> Iterable[str]:
        ids = push(messages)
        _MESSAGES_PUSHED.set()
        return ids

    return push_and_wake


def _move_messages_when_pushed(state: Any, queue: Any, nodes_mapping: Any, f_stop: Any) -> None:
    """Flower's ``add_messages_to_queue`` (assumption 18), woken as soon as the server pushes
    messages instead of looking every 0.1 s (it still looks every 0.1 s otherwise)."""
    nodes = set(nodes_mapping)
    while not f_stop.is_set():
        for message in _undelivered_messages(state, nodes):
            queue.put(message)
        _MESSAGES_PUSHED.wait(0.1)
        _MESSAGES_PUSHED.clear()  # a push from here on is still found by the next look


#: Set when the engine has stored a reply: wakes the server's wait for replies (assumption 21).
_REPLY_STORED = threading.Event()
#: The longest the server waits between looks for replies when nothing wakes it.
REPLY_LOOK_S = 0.1


def _store_replies_and_wake(state: Any, replies: Any, f_stop: Any) -> None:
    """Flower's ``put_message_into_state`` (assumption 21), waking the server's wait for
    replies (:func:`_replies_awaited`) each time it has stored one."""
    while not f_stop.is_set():
        try:
            reply = replies.get(timeout=1.0)
        except queue.Empty:
            continue
        state.store_message_res(reply)
        _REPLY_STORED.set()


def _replies_awaited(grid: InMemoryGrid, messages: list[Message], timeout: float) -> list[Message]:
    """``InMemoryGrid.send_and_receive`` (push, then pull until every reply is in or
    ``timeout`` has passed), looking again as soon as a reply is stored instead of every
    ``pull_interval`` (assumption 21). The event is cleared before each look, so a reply
    stored during a look wakes the next wait at once."""
    waiting = set(grid.push_messages(messages))
    deadline = time.monotonic() + timeout
    replies: list[Message] = []
    while waiting:
        _REPLY_STORED.clear()
        found = list(grid.pull_messages(waiting))
        replies += found
        waiting -= {reply.metadata.reply_to_message_id for reply in found}
        left = deadline - time.monotonic()
        if not waiting or left <= 0:
            break
        _REPLY_STORED.wait(min(left, REPLY_LOOK_S))
    return replies


def _undelivered_messages(state: Any, nodes: set[int]) -> list[Message]:
    """What ``state.get_message_ins(node_id, limit=None)`` hands out for each of ``nodes``, in
    one pass over the store instead of one per node (assumption 18): the cohort's nodes times
    the messages in flight was most of the driver's time at a cohort of 100."""
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


class PartitionAddressedGrid:
    """Replies from :class:`VirtualClientGrid` with ``src_node_id`` set to the partition.

    Flower's ``Metadata`` has no setter for ``src_node_id``; it reads ``_src_node_id`` from the
    instance dict (assumption 12, contract-tested).
    """

    def __init__(self, grid: VirtualClientGrid) -> None:
        self.grid = grid

    def get_node_ids(self) -> list[int]:
        return self.grid.get_node_ids()

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float) -> list[Message]:
        replies = self.grid.send_and_receive(messages, timeout=timeout)
        for reply in replies:
            partition = self.grid.partition_of.get(reply.metadata.src_node_id, -1)
            reply.metadata.__dict__["_src_node_id"] = partition
        return replies


def _addressed(message: Message, slot: int, partition: int) -> Message:
    """A copy of ``message`` for node ``slot`` whose config names ``partition``."""
    content = RecordDict(dict(message.content.items()))
    config = ConfigRecord(dict(content.get("config", ConfigRecord())))
    config[PARTITION_ID_KEY] = partition
    content["config"] = config
    metadata = message.metadata
    return Message(
        content=content,
        dst_node_id=slot,
        message_type=metadata.message_type,
        group_id=metadata.group_id,  # SecAgg+ keeps its round there
        ttl=metadata.ttl,
    )


def _batched(group: list[Message]) -> Message:
    """The routed messages of ``group`` as one message to the first one's slot."""
    metadata = group[0].metadata
    return Message(
        content=pack_contents([message.content for message in group]),
        dst_node_id=metadata.dst_node_id,
        message_type=metadata.message_type,
        group_id=metadata.group_id,
        ttl=metadata.ttl,
    )


def _unbatched(reply: Message, group: list[Message]) -> list[Message]:
    """The batch ``reply`` as one reply per message of ``group``, each from its own slot; a
    batch that failed as a whole (its actor died) fails every member with its error."""
    slots = [message.metadata.dst_node_id for message in group]
    if reply.has_error():
        return [replied_as(reply, slot, error=reply.error) for slot in slots]
    return [
        replied_as(reply, slot, error=failed)
        if (failed := member_error(content)) is not None
        else replied_as(reply, slot, content=content)
        for slot, content in zip(slots, member_contents(reply.content), strict=True)
    ]


def replied_as(
    reply: Message, slot: int, content: RecordDict | None = None, error: Error | None = None
) -> Message:
    """A copy of ``reply``'s metadata, sent from ``slot``, with this content or error
    (assumptions 12 and 20)."""
    metadata = copy.copy(reply.metadata)
    metadata.__dict__["_src_node_id"] = slot
    return Message(metadata=metadata, content=content, error=error)  # type: ignore[call-overload]


def as_received(batch: Message, content: RecordDict) -> Message:
    """A batch member as the message a client would have received on its own: the batch's
    metadata (a copy) with the member's content (assumption 20)."""
    return Message(metadata=copy.copy(batch.metadata), content=content)  # type: ignore[call-overload]


def client_error(error: Exception) -> RecordDict:
    """A member's exception as a member's content: the code and reason Flower's engine gives
    an exception raised by a ClientApp (assumption 20)."""
    from flwr.common.constant import ErrorCode

    reason = str(type(error)) + ":<'" + str(error) + "'>"
    return error_record(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason))


def partition_as_node_mod(message: Message, context: Any, call_next: Any) -> Message:
    """Client mod: code below it sees the partition as the node id (``dst_node_id``).

    Node-identity protocols (SecAgg+'s ``secaggplus_mod`` takes ``dst_node_id`` as its own id
    among its neighbours) must see the partition the server addressed, not the slot that
    serves it; the reply is handed back as coming from the slot (assumption 12).
    """
    slot = message.metadata.dst_node_id
    message.metadata.dst_node_id = message_partition(message)
    try:
        reply = call_next(message, context)
    finally:
        message.metadata.dst_node_id = slot
    reply.metadata.__dict__["_src_node_id"] = slot
    return reply


def cohort_size(num_clients: int, fraction: float, min_nodes: int) -> int:
    """How many nodes Flower's strategies sample per round (assumption 7); 0 when disabled."""
    if fraction == 0.0:
        return 0
    return min(num_clients, max(int(num_clients * fraction), min_nodes))


@contextlib.contextmanager
def fixed_cohort(strategy: Any, phase: str, size: int) -> Iterator[None]:
    """Make Flower's ``strategy`` sample exactly ``size`` nodes in one ``configure_<phase>``
    call (assumption 8): ``int(n · fraction)`` is 0 for a tiny fraction, so ``min_nodes``
    decides; ``size = 0`` samples nobody. Restores the strategy's settings after.

    Over-selection samples more than Flower's cohort, and availability may leave fewer nodes
    than ``min_available_nodes``, where Flower would wait for nodes forever.
    """
    names = (f"fraction_{phase}", f"min_{phase}_nodes", "min_available_nodes")
    saved = [getattr(strategy, name) for name in names]
    for name, value in zip(names, (1e-12 if size else 0.0, size, max(size, 1)), strict=True):
        setattr(strategy, name, value)
    try:
        yield
    finally:
        for name, value in zip(names, saved, strict=True):
            setattr(strategy, name, value)


def message_partition(message: Message) -> int:
    """The partition a message addressed by :class:`VirtualClientGrid` asks a client to serve."""
    return int(message.content["config"][PARTITION_ID_KEY])


#: Assumption 7: every attribute through which a Flower strategy carries state across rounds.
STRATEGY_STATE_ATTRIBUTES = ("current_arrays", "m_t", "v_t", "momentum_vector")


def strategy_server_state(strategy: Any) -> dict[str, Any]:
    """The strategy's server state (assumption 7) as tensors, for a ``weights_only`` checkpoint.

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
                "simfl.engine.flower_internals does not know this Flower state"
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
    """Assumption 15: the training replies a Flower strategy would aggregate, as Flower checks
    them, so a rule that replaces only the averaging step keeps Flower's filtering."""
    valid_replies, _ = strategy._check_and_log_replies(replies, is_train=True)
    return [message.content for message in valid_replies]


def _tensor(array: Any) -> Any:
    import numpy as np
    import torch

    return torch.from_numpy(np.array(array, copy=True))


@contextlib.contextmanager
def seeded_sampling(seed: int) -> Iterator[None]:
    """Seed Flower's node sampling (module ``random``) for one call; restore ``random`` after.

    Flower's strategies draw from the global ``random`` module, so the draw is ours to seed,
    but other code in this process must not see its state changed.
    """
    saved = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved)


@contextlib.contextmanager
def seeded_numpy_global(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for one call (Flower's DP noise, assumption 7); restore it.

    Flower's DP wrappers and mods draw their Gaussian noise from ``np.random``; seeding it per
    (scenario seed, purpose, round, client) makes DP runs reproducible like every other run.
    """
    import numpy as np

    saved = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(saved)


def _exact_clip(param1: Any, param2: Any, clipping_norm: float) -> bool:
    """Flower's flat clipping of ``param1 - param2``, in place; True if it clipped. An update
    within the norm (zero included) is left bit for bit as it came."""
    from flwr.supercore.differential_privacy import get_norm

    update = [np.subtract(x, y) for x, y in zip(param1, param2, strict=True)]
    norm = get_norm(update)
    if norm <= clipping_norm:
        return False
    for i, delta in enumerate(update):
        delta *= clipping_norm / norm
        param1[i] = param2[i] + delta
    return True


def _exact_clip_arrays(arrays: Any, clipping_norm: float) -> bool:
    from flwr.supercore.differential_privacy import get_norm

    norm = get_norm(arrays)
    if norm <= clipping_norm:
        return False
    for array in arrays:
        array *= clipping_norm / norm
    return True


@contextlib.contextmanager
def exact_dp_clipping() -> Iterator[None]:
    """Flower's DP clipping without its two numerical flaws (assumption 8).

    Flower 1.42 divides by the update's norm (an all-zero update, a client where nothing
    trainable changed, raises ``ZeroDivisionError``) and rebuilds every reply as
    ``global + (reply - global)``, which is not bit-identical in floating point even when
    nothing is clipped. Within this context an update within the clipping norm reaches
    aggregation exactly as the client sent it; a larger one is scaled to the norm as Flower does.
    """
    from flwr.clientapp.mod import centraldp_mods, localdp_mod
    from flwr.serverapp.strategy import dp_adaptive_clipping, dp_fixed_clipping

    def clip(param1: Any, param2: Any, clipping_norm: float) -> None:
        _exact_clip(param1, param2, clipping_norm)

    patches = [
        (dp_fixed_clipping, "compute_clip_model_update", clip),
        (centraldp_mods, "compute_clip_model_update", clip),
        (centraldp_mods, "compute_adaptive_clip_model_update", _exact_clip),
        (localdp_mod, "compute_clip_model_update", clip),
        (dp_adaptive_clipping, "adaptive_clip_inputs_inplace", _exact_clip_arrays),
    ]
    with _replaced(patches):
        yield


@contextlib.contextmanager
def _replaced(patches: list[tuple[Any, str, Any]]) -> Iterator[None]:
    """Each ``(module, name, replacement)`` in place for the block; the originals after it."""
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, replacement in patches:
        setattr(module, name, replacement)
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


class ActorPools:
    """Flower's ClientApp actor pools, kept alive across the simulations of one Ray session.

    Flower's ``RayBackend`` builds a pool of actors for every ``run_simulation`` and, when the
    run ends, kills them and shuts Ray down, so each sweep cell would pay Ray's and the actors'
    start-up again. A pool here is built once per ``client_resources`` and reused by every
    later simulation with the same resources (actors hold no run state: each call brings its
    ClientApp, and simfl's worker cache is keyed by the run plan). A pool whose actors do not
    answer is rebuilt, and then every actor it ever made is killed, busy ones included
    (Flower's ``terminate_all_actors`` only reaches idle ones).

    One pool lives at a time: Flower sizes a pool by the cluster's *total* resources, and its
    actors hold theirs for life, so a second pool with other resources (the next cell of a
    sweep over ``num_cpus`` or ``num_gpus``) would wait forever for CPUs or GPUs the first
    still holds. Building a pool for new resources therefore kills the previous one.
    """

    def __init__(self) -> None:
        self._pools: dict[str, Any] = {}
        self._actors: dict[str, list[Any]] = {}

    def get(self, client_resources: dict[str, Any], actor_kwargs: dict[str, Any]) -> Any:
        from flwr.simulation.ray_transport.ray_actor import BasicActorPool, ClientAppActor

        key = json.dumps([client_resources, actor_kwargs], sort_keys=True, default=str)
        pool = self._pools.get(key)
        if pool is not None and not _responsive(pool):
            self._kill(key)
            pool = None
        if pool is None:
            self.close()  # release the previous pool's resources (see the class docstring)
            pool = BasicActorPool(ClientAppActor, client_resources, actor_kwargs)
            self._actors[key] = []
            self._track(pool, self._actors[key])
            pool.add_actors_to_pool(pool.actors_capacity)
            self._pools[key] = pool
        return pool

    @staticmethod
    def _track(pool: Any, created: list[Any]) -> None:
        """Record every actor the pool creates (Flower keeps only the idle ones)."""
        create = pool.create_actor_fn

        def create_and_track() -> Any:
            actor = create()
            created.append(actor)
            return actor

        pool.create_actor_fn = create_and_track

    def _kill(self, key: str) -> None:
        import ray

        for actor in self._actors.pop(key, []):
            with contextlib.suppress(Exception):  # already dead is fine
                ray.kill(actor)
        self._pools.pop(key, None)

    def close(self) -> None:
        for key in list(self._pools):
            self._kill(key)


def _responsive(pool: Any, timeout_s: float = 30.0) -> bool:
    """Whether every actor is idle in the pool and answers (a crashed actor would not)."""
    import ray

    if len(pool.pool) != pool.num_actors:
        return False
    try:
        ray.get([actor.__ray_ready__.remote() for actor in pool.pool], timeout=timeout_s)
    except Exception:  # noqa: BLE001 - any failure means: build a fresh pool
        return False
    return True


#: Worker threads Flower's engine may start: one per actor, and actors are bounded by Ray's
#: resources, so this only lifts Python's default cap (assumption 7).
MAX_WORKER_THREADS = 4096


class _ThreadPerActor(ThreadPoolExecutor):
    """Flower's ``ThreadPoolExecutor()`` without the ``min(32, cpu_count + 4)`` default cap.

    Threads are started lazily, one per submitted task, and Flower submits one per actor.
    """

    def __init__(self, max_workers: int | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(max_workers or MAX_WORKER_THREADS, *args, **kwargs)


#: The longest Flower's engine threads wait for a message before they look at their stop
#: event again (assumption 19: Flower waits 1 s). Ten looks a second per thread cost nothing.
STOP_POLL_S = 0.1


class _PromptStopQueue(queue.Queue):
    """Flower's message queues, whose timed ``get`` waits at most :data:`STOP_POLL_S`: the
    caller loops and checks its stop event between waits (assumption 19)."""

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if block and timeout is not None:
            timeout = min(timeout, STOP_POLL_S)
        return super().get(block, timeout)


def _prompt_stop() -> contextlib.AbstractContextManager[None]:
    """End the engine's threads within :data:`STOP_POLL_S` of the ServerApp (assumption 19)."""
    from flwr.server.superlink.fleet.vce import vce_api

    return _replaced([(vce_api, "Queue", _PromptStopQueue)])


def _one_thread_per_actor() -> contextlib.AbstractContextManager[None]:
    """Let every actor of the pool run a client at once (assumption 7)."""
    from flwr.server.superlink.fleet.vce import vce_api

    return _replaced([(vce_api, "ThreadPoolExecutor", _ThreadPerActor)])


def _replies_wake_the_server() -> contextlib.AbstractContextManager[None]:
    """Wake the server's wait for replies as each one is stored (assumption 21)."""
    from flwr.server.superlink.fleet.vce import vce_api

    return _replaced([(vce_api, "put_message_into_state", _store_replies_and_wake)])


def _messages_moved_when_pushed() -> contextlib.AbstractContextManager[None]:
    """Start each exchange as soon as its messages are stored (assumption 18)."""
    from flwr.server.superlink.fleet.vce import vce_api

    return _replaced([(vce_api, "add_messages_to_queue", _move_messages_when_pushed)])


@contextlib.contextmanager
def _session_backend(session: RaySession) -> Iterator[None]:
    """Make Flower's engine use ``session``'s actor pools and leave Ray running (assumption 2)."""
    from flwr.server.superlink.fleet.vce.backend import raybackend

    flower_backend = raybackend.RayBackend

    class SessionRayBackend(flower_backend):  # type: ignore[misc, valid-type]
        def build(self, app_fn: Any) -> None:
            self.pool = session.pools.get(self.client_resources, self.actor_kwargs)
            self.app_fn = app_fn

        def terminate(self) -> None:  # the session owns Ray and the actors
            pass

    raybackend.RayBackend = SessionRayBackend
    try:
        yield
    finally:
        raybackend.RayBackend = flower_backend


@contextlib.contextmanager
def _flower_log_level(level: int) -> Iterator[None]:
    """Set the ``flwr`` logger's level for one simulation and restore it afterwards."""
    logger = logging.getLogger("flwr")
    saved = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(saved)


def run_flower_simulation(
    server_app: ServerApp,
    client_app: ClientApp,
    num_clients: int,
    backend_config: dict[str, Any],
    session: RaySession,
    verbose: bool = False,
) -> None:
    """Flower's ``run_simulation`` on ``session``'s Ray runtime and actors (assumption 1).

    Flower logs every client failure with a traceback; simfl reports them itself, once, so the
    ``flwr`` logger is quiet unless ``verbose``. Re-raises what the ServerApp raised.
    """
    from flwr.simulation import run_simulation

    level = logging.DEBUG if verbose else logging.CRITICAL
    try:
        with (
            warnings.catch_warnings(),
            _session_backend(session),
            _one_thread_per_actor(),
            _messages_moved_when_pushed(),
            _replies_wake_the_server(),
            _prompt_stop(),
            _flower_log_level(level),
        ):
            warnings.simplefilter("ignore")  # run_simulation is deprecated in 1.42
            run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=num_clients,
                backend_config=backend_config,
                verbose_logging=verbose,
            )
    except RuntimeError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, SimflError):  # Flower wraps what the ServerApp raised
            raise cause from None
        raise


def _andrew_geometric_update(self: Any, clipped_fraction: float) -> None:
    """Andrew et al. 2021's update, C <- C exp(-lr (unclipped - (1 - target))), written with
    the clipped fraction Flower passes: the norm grows while more than ``target`` of the
    updates are clipped and shrinks while fewer are (assumption 16)."""
    self.clipping_norm *= math.exp(
        self.clip_norm_lr * (clipped_fraction - self.target_clipped_quantile)
    )


def adaptive_clipping_wrapper(side: str) -> type:
    """Flower's adaptive-clipping wrapper for ``side`` ("server" or "client") with the norm
    moving in the paper's direction (assumption 16); everything else is Flower's."""
    from flwr.serverapp.strategy import (
        DifferentialPrivacyClientSideAdaptiveClipping,
        DifferentialPrivacyServerSideAdaptiveClipping,
    )

    base = (
        DifferentialPrivacyServerSideAdaptiveClipping
        if side == "server"
        else DifferentialPrivacyClientSideAdaptiveClipping
    )
    return type(base.__name__, (base,), {"_geometric_update": _andrew_geometric_update})
