"""Rounds whose measuring callbacks run while the next round trains, and where they run.

A server callback that only measures the global model (central evaluation first of all) may
be deferred (:mod:`simfl.engine.server_callbacks`): the round is then pending until its
deferred callbacks have run, and reported (and its checkpoint written) once they have. Where
they run is ``resources.evaluation_overlap`` as this machine resolves it
(:func:`simfl.engine.concurrency.evaluation_overlap`):

- "driver": on the main thread with one torch thread, while the next exchange waits for the
  clients on a helper thread;
- "actors": as side tasks (central evaluation's slices, :mod:`simfl.engine.central_slices`)
  that the next exchange carries behind its clients; the last round's go out in an exchange
  of their own;
- "off": nothing is deferred; every callback runs as its round ends.

The round loop (:class:`simfl.engine.server_app.FederationLoop`) holds one of these and sends
every exchange through :meth:`DeferredCallbacks.settled_after`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from simfl.engine.client_errors import client_traceback
from simfl.engine.records import ClientFailure, RoundRecord

if TYPE_CHECKING:
    from flwr.app import Message, RecordDict

    from simfl.engine.central_slices import SideTask
    from simfl.engine.checkpoint import Checkpointer, CheckpointSnapshot
    from simfl.engine.server_callbacks import CallbackResult, RoundState, ServerCallback
    from simfl.flower_compat.grid import VirtualClientGrid
    from simfl.tracking.callbacks import RunCallback

T = TypeVar("T")


@dataclass
class PendingRound:
    """A round whose callbacks that overlap the next round (central evaluation) are to run."""

    record: RoundRecord
    start: float  # perf_counter() when the round began
    position: int  # how many metrics the record had before the callbacks ran
    state: RoundState  # what the deferred callbacks look at
    deferred: list[tuple[str, ServerCallback]]  # (name, callback), in the callbacks' order
    checkpoint: CheckpointSnapshot | None
    results: list[tuple[str, CallbackResult | None]] | None = None  # once they have run
    seconds: float = 0.0  # the round's time when the loop moved on without waiting for it


class DeferredCallbacks:
    """The pending round (one at most) and where its deferred callbacks run (``overlap``:
    "driver", "actors" or "off", set by the loop once every callback is known)."""

    def __init__(
        self,
        grid: VirtualClientGrid,
        timeout: float,
        callback: RunCallback,
        checkpointer: Checkpointer | None,
    ) -> None:
        self.grid, self.timeout = grid, timeout
        self.callback, self.checkpointer = callback, checkpointer
        self.overlap = "off"
        self.pending: PendingRound | None = None

    def defers(self, server_round: int, rounds: int) -> bool:
        """Whether the round's overlapping callbacks are deferred: with "actors" always (the
        last round's run on every actor, in an exchange of their own, settled at once); with
        "driver" but in the last round, which has nothing to overlap (its evaluation gets
        every torch thread)."""
        return self.overlap == "actors" or (self.overlap == "driver" and server_round < rounds)

    def hold(self, pending: PendingRound, settle_now: bool) -> None:
        """``pending`` is the round to complete: now, or when the next exchange has run its
        deferred callbacks (its time is then until the loop moved on; waiting for the
        results counts in the next round)."""
        self.pending = pending
        if settle_now:
            self.settle()
        else:
            pending.seconds = time.perf_counter() - pending.start

    def run(self, torch_threads: int | None = None, remote: bool = True) -> None:
        """Run the pending round's deferred callbacks: with overlap "actors" (and ``remote``)
        as side tasks in an exchange of their own, else here (with ``torch_threads`` torch
        threads on this thread while they run: one while the actors train)."""
        import torch

        pending = self.pending
        if pending is None or pending.results is not None:
            return
        if remote and self.overlap == "actors":
            self.with_side_work(
                pending, lambda side: (None, self.grid.exchange([], side, timeout=self.timeout)[1])
            )
            return
        saved = torch.get_num_threads()
        torch.set_num_threads(torch_threads or saved)
        try:
            pending.results = [
                (name, callback.after_round(pending.state)) for name, callback in pending.deferred
            ]
        finally:
            torch.set_num_threads(saved)

    def settled_after(self, send: Callable[[Sequence[SideTask]], tuple[T, list[Any]]]) -> T:
        """``send(side)`` (an exchange with the clients that also carries ``side`` tasks and
        returns its result and their replies) while the previous round's deferred callbacks
        run: on the actors, as side tasks behind the clients (overlap "actors",
        :meth:`with_side_work`); or on this thread with one torch thread while a helper
        thread exchanges ("driver"). Then that round is settled (:meth:`settle`) and
        ``send``'s result returned.

        The driver's evaluation stays on the main thread, whose malloc arena keeps its
        activations' memory between rounds (a thread of its own would map and unmap them every
        batch), and where a signal still stops the run at once: the helper is a daemon thread
        that nothing waits for if the evaluation raises (SIGTERM's ``SystemExit`` included)."""
        if self.pending is None:
            return send(())[0]
        if self.overlap == "actors":
            outcome = self.with_side_work(self.pending, send)
            self.settle()
            return outcome
        outcome: dict[str, Any] = {}

        def exchange() -> None:
            try:
                outcome["replies"] = send(())[0]
            except BaseException as error:  # noqa: BLE001 - re-raised on the main thread
                outcome["error"] = error

        helper = threading.Thread(target=exchange, name="simfl-exchange", daemon=True)
        helper.start()
        self.run(torch_threads=1)
        helper.join()
        if "error" in outcome:
            raise outcome["error"]
        self.settle()
        return outcome["replies"]

    def with_side_work(
        self, pending: PendingRound, send: Callable[[Sequence[SideTask]], tuple[T, list[Any]]]
    ) -> T:
        """``send`` with the deferred callbacks' remote work (central evaluation's slices) as
        side tasks, whose replies become their results; a callback without remote work runs
        here once the exchange is done."""
        work = []
        room = len(self.grid.side_slots)
        for name, callback in pending.deferred:
            remote = callback.remote_work(pending.state)
            if remote is not None and len(remote.tasks) > room:
                remote = None
            room -= len(remote.tasks) if remote is not None else 0
            work.append((name, callback, remote))
        tasks = [task for _, _, remote in work if remote is not None for task in remote.tasks]
        outcome, side_replies = send(tasks)
        replies = self.side_contents(pending.record.round, side_replies)
        results: list[tuple[str, CallbackResult | None]] = []
        for name, callback, remote in work:
            if remote is None:
                results.append((name, callback.after_round(pending.state)))
                continue
            mine, replies = replies[: len(remote.tasks)], replies[len(remote.tasks) :]
            results.append((name, remote.finish(mine)))
        pending.results = results
        return outcome

    def side_contents(
        self, server_round: int, replies: list[Message | None]
    ) -> list[RecordDict | None]:
        """Each side task's reply content; one that failed or never came is None (its work is
        then done here) and is reported, as a client failure of phase "central-evaluation"."""
        failures = [
            ClientFailure(
                server_round,
                "central-evaluation",
                -1,
                reply.metadata.src_node_id if reply is not None else -1,
                client_traceback(reply.error.reason)
                if reply is not None
                else "no reply before resources.round_timeout_s",
            )
            for reply in replies
            if reply is None or reply.has_error()
        ]
        if failures:
            self.callback.on_client_failures(failures)
        return [None if r is None or r.has_error() else r.content for r in replies]

    def side_tasks_then(
        self, side: Sequence[SideTask], send: Callable[[], T]
    ) -> tuple[T, list[Any]]:
        """``side`` tasks in an exchange of their own, then ``send()``: for a multi-stage
        protocol (SecAgg+) whose exchanges cannot carry them."""
        replies = self.grid.exchange([], side, timeout=self.timeout)[1] if side else []
        return send(), replies

    def settle(self, remote: bool = True) -> None:
        """Complete the pending round: its deferred callbacks' metrics take their place in
        its row (before the others'), then it is reported and its checkpoint written. Not
        ``remote``: deferred callbacks still to run, run here (a run that is failing)."""
        self.run(remote=remote)
        pending, self.pending = self.pending, None
        if pending is None:
            return
        record = pending.record
        items = list(record.metrics.items())
        record.metrics = dict(items[: pending.position])
        for name, result in pending.results or []:
            if result is not None:
                record.add(result.metrics, name)
        record.add(dict(items[pending.position :]))
        record.round_seconds = pending.seconds or time.perf_counter() - pending.start
        self.callback.on_round_end(record)
        if pending.checkpoint is not None:
            self.checkpointer.write(pending.checkpoint)  # type: ignore[union-attr]
