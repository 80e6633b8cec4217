"""Virtual clients on Flower's nodes: partitions routed to slots, and the cohort Flower samples.

Flower registers one node per simulated client and its strategies sample nodes; a benchmark
needs 10^5 clients, a seeded draw, and a cohort it can set. Here clients are partitions, the
nodes Flower registers are the cohort's slots, and each message names the partition its slot
serves for that exchange (:class:`VirtualClientGrid`).

Assumptions (contract-tested in ``test_grid.py``):

- ``strategies-sample-with-module-random``: Flower's strategies sample nodes with the
  module-level ``random.sample`` over ``grid.get_node_ids()`` (``strategy_utils.sample_nodes``),
  so :func:`seeded_sampling` decides the draw.
- ``partition-id-key-is-flowers``: Flower's name for a partition id (``PARTITION_ID_KEY`` of
  ``flwr.common.constant``), which simfl puts in each message's config record.
- ``strategies-sample-fraction-or-min-nodes``: Flower's strategies sample
  ``max(int(len(node_ids) * fraction), min_nodes)`` nodes per round (the cohort; simfl
  registers that many nodes, see :func:`cohort_size`).
- ``strategies-read-cohort-attributes-when-configuring``: strategies read
  ``fraction_train``/``min_train_nodes`` (``fraction_evaluate``/``min_evaluate_nodes``) and
  ``min_available_nodes`` as attributes when ``configure_*`` runs, and sample nothing when the
  fraction is 0.0 (:func:`fixed_cohort`).

Replies name their sender through :func:`simfl.flower_compat.messages.sent_from`
(``reply-sender-read-from-metadata-dict``), and the grid's exchanges use the wake-ups of
:mod:`simfl.flower_compat.wakeups`.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.common.constant import PARTITION_ID_KEY
from flwr.serverapp import Grid
from flwr.superlink.grid import InMemoryGrid

from simfl.engine.batching import even_batches
from simfl.errors import SimflError
from simfl.flower_compat.messages import batched, sent_from, unbatched
from simfl.flower_compat.wakeups import replies_awaited, waking_the_engine

if TYPE_CHECKING:
    from simfl.engine.central_slices import SideTask

__all__ = [
    "PARTITION_ID_KEY",
    "PartitionAddressedGrid",
    "VirtualClientGrid",
    "cohort_size",
    "fixed_cohort",
    "message_partition",
    "partition_as_node_mod",
    "seeded_sampling",
]


class VirtualClientGrid:
    """Clients are partitions; Flower's nodes are slots that serve whichever partition a
    message names. No per-node discovery, so start-up does not grow with the population.

    Flower's strategies sample from ``get_node_ids()``: here that is the partition ids
    ``0..N-1`` (the same order the partitions have, so a seeded draw picks the same clients as
    sampling nodes sorted by partition would). :meth:`send_and_receive` routes the k-th sampled
    partition (in partition order) to the k-th slot, adding ``partition-id`` to a copy of the
    message's config record; ``partition_of`` then maps each reply's ``src_node_id`` (a slot)
    to the partition it served, for that exchange. Only ``cohort`` slots exist (Flower
    registers one node per slot), so 10^5 virtual clients cost no more nodes, actors or
    messages than the cohort does. With ``calls_for``, the routed messages of an exchange go
    out in fewer actor calls, several partitions per message (:mod:`simfl.engine.batching`),
    and come back as one reply per partition, from its slot, as without batching. The last
    ``side_slots`` slots serve no partition: they carry side tasks (central evaluation's
    slices, :mod:`simfl.engine.central_slices`) behind an exchange's clients (:meth:`exchange`).
    An exchange stops waiting for replies once ``abandoned()`` is true (an interrupted run
    gives up its round) and returns the replies it has.
    """

    def __init__(
        self,
        grid: Grid,
        num_partitions: int,
        slots: list[int],
        calls_for: Callable[[int], int] | None = None,
        side_slots: int = 0,
        abandoned: Callable[[], bool] = lambda: False,
    ) -> None:
        self._grid = grid
        self._abandoned = abandoned
        self._partitions = list(range(num_partitions))
        ordered = sorted(slots)
        cut = len(ordered) - min(side_slots, len(ordered))
        self._slots, self.side_slots = ordered[:cut], ordered[cut:]
        self._available = self._partitions
        self.partition_of: dict[int, int] = {}
        self._pinned: dict[int, int] | None = None  # partition -> slot, for multi-stage rounds
        # How many actor calls an exchange of n messages goes out in (batching.py); n: none.
        self._calls_for = calls_for or (lambda count: count)
        if isinstance(grid, InMemoryGrid):  # engine-moves-messages-in-a-polling-thread
            grid.push_messages = waking_the_engine(grid.push_messages)  # type: ignore[method-assign]

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
        the message mover of :mod:`simfl.flower_compat.wakeups` keeps the store's order): the
        clients' replies, and each side task's reply (None where none came back in time)."""
        if len(side) > len(self.side_slots):
            raise SimflError(f"{len(side)} side tasks, but {len(self.side_slots)} side slots")
        routed = self._route(messages)
        calls = self._calls_for(len(routed)) if self._pinned is None else len(routed)
        runs = even_batches(len(routed), calls) if routed else []
        groups = [[routed[i] for i in run] for run in runs]
        outgoing = [group[0] if len(group) == 1 else batched(group) for group in groups]
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
                for_clients += unbatched(reply, group) if len(group) > 1 else [reply]
            else:
                from_side[slot] = reply
        side_replies = [from_side.get(slot) for slot in self.side_slots[: len(side)]]
        return for_clients, side_replies

    def _deliver(self, messages: list[Message], timeout: float) -> list[Message]:
        if isinstance(self._grid, InMemoryGrid):  # woken by each stored reply (wakeups.py)
            return replies_awaited(self._grid, messages, timeout, self._abandoned)
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
            routed.append(addressed(message, slot, partition))
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


class PartitionAddressedGrid:
    """Replies from :class:`VirtualClientGrid` with ``src_node_id`` set to the partition
    (``reply-sender-read-from-metadata-dict``: Flower's ``Metadata`` has no setter for it)."""

    def __init__(self, grid: VirtualClientGrid) -> None:
        self.grid = grid

    def get_node_ids(self) -> list[int]:
        return self.grid.get_node_ids()

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float) -> list[Message]:
        replies = self.grid.send_and_receive(messages, timeout=timeout)
        for reply in replies:
            sent_from(reply, self.grid.partition_of.get(reply.metadata.src_node_id, -1))
        return replies


def addressed(message: Message, slot: int, partition: int) -> Message:
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


def message_partition(message: Message) -> int:
    """The partition a message addressed by :class:`VirtualClientGrid` asks a client to serve."""
    return int(message.content["config"][PARTITION_ID_KEY])


def partition_as_node_mod(message: Message, context: Any, call_next: Any) -> Message:
    """Client mod: code below it sees the partition as the node id (``dst_node_id``).

    Node-identity protocols (SecAgg+'s ``secaggplus_mod`` takes ``dst_node_id`` as its own id
    among its neighbours) must see the partition the server addressed, not the slot that
    serves it; the reply is handed back as coming from the slot
    (``reply-sender-read-from-metadata-dict``).
    """
    slot = message.metadata.dst_node_id
    message.metadata.dst_node_id = message_partition(message)
    try:
        reply = call_next(message, context)
    finally:
        message.metadata.dst_node_id = slot
    sent_from(reply, slot)
    return reply


def cohort_size(num_clients: int, fraction: float, min_nodes: int) -> int:
    """How many nodes Flower's strategies sample per round
    (``strategies-sample-fraction-or-min-nodes``); 0 when disabled."""
    if fraction == 0.0:
        return 0
    return min(num_clients, max(int(num_clients * fraction), min_nodes))


@contextlib.contextmanager
def fixed_cohort(strategy: Any, phase: str, size: int) -> Iterator[None]:
    """Make Flower's ``strategy`` sample exactly ``size`` nodes in one ``configure_<phase>``
    call (``strategies-read-cohort-attributes-when-configuring``): ``int(n · fraction)`` is 0
    for a tiny fraction, so ``min_nodes`` decides; ``size = 0`` samples nobody. Restores the
    strategy's settings after.

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


@contextlib.contextmanager
def seeded_sampling(seed: int) -> Iterator[None]:
    """Seed Flower's node sampling (module ``random``: ``strategies-sample-with-module-random``)
    for one call; restore ``random`` after.

    Flower's strategies draw from the global ``random`` module, so the draw is ours to seed,
    but other code in this process must not see its state changed.
    """
    saved = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved)
