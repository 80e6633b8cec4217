"""The per-round systems plan: who can be sampled, whose update counts, how long a round takes.

The round loop asks its planner (:class:`simfl.engine.round_planner.RoundPlanner`) to sample
within a context (``sampling``) and, after the exchange, which replies reach aggregation
(``admit``); :mod:`simfl.systems.feature` gives it this one. :class:`SystemsPlan` samples
only available clients (over-selecting ⌈(1+o)·K⌉ when asked), times every client with
:func:`~simfl.systems.clock.client_round_seconds`, and ends the round as a server would: when
K clients have finished (over-selection), when every sampled client has finished, failed or
gone offline, or at the deadline (``systems.deadline_s``, else ``resources.round_timeout_s``)
when a client hangs. Dropped clients' updates never reach aggregation; counts and the
simulated round time go into the round record.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from simfl.engine.records import message_bytes
from simfl.engine.round_planner import RoundPlanner, TrainingRound
from simfl.flower_compat.grid import cohort_size, fixed_cohort
from simfl.schema.systems import over_selected
from simfl.seeding import rng_for
from simfl.systems.availability import Availability, build_availability
from simfl.systems.clock import PROTOCOL_SAMPLES_KEY, SimulatedClock, client_round_seconds
from simfl.systems.profiles import DeviceProfiles, draw_profiles

if TYPE_CHECKING:
    from flwr.app import Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan
    from simfl.engine.server_callbacks import ServerCallback

#: When too few clients are online to sample a cohort, the server checks again this often.
WAIT_STEP_S = 60.0
MAX_WAIT_S = 30 * 24 * 3600.0


@dataclass
class ClientTiming:
    """What the plan knows about each client: data size, device, and its minibatches."""

    train_sizes: np.ndarray  # training examples per partition
    profiles: DeviceProfiles
    epochs: int
    batch_size: int = 32

    def total_steps(self, client: int) -> int:
        """The client's local steps for its whole local work (every epoch's minibatches)."""
        return self.epochs * math.ceil(int(self.train_sizes[client]) / self.batch_size)

    def samples_after(self, client: int, steps: int) -> int:
        """The examples the client's first ``steps`` minibatches hold (whole epochs, then the
        next epoch's first batches)."""
        size = int(self.train_sizes[client])
        per_epoch = math.ceil(size / self.batch_size)
        epochs, rest = divmod(steps, per_epoch)
        return epochs * size + min(rest * self.batch_size, size)

    def seconds(
        self,
        client: int,
        bytes_down: int,
        bytes_up: int,
        slowdown: float,
        steps: int | None = None,
        protocol_samples: float = 0.0,
    ) -> float:
        """Simulated seconds of the client's round: its whole local work, or ``steps``
        minibatches of it (partial work), plus its protocol's work (in samples)."""
        p = self.profiles
        samples, epochs = int(self.train_sizes[client]), self.epochs
        if steps is not None:
            samples, epochs = self.samples_after(client, steps), 1
        return client_round_seconds(
            samples,
            epochs,
            float(p.ms_per_sample[client]),
            bytes_down,
            bytes_up,
            float(p.down_kbps[client]),
            float(p.up_kbps[client]),
            float(p.latency_ms[client]),
            slowdown,
            protocol_samples,
        )


class SystemsPlan(RoundPlanner):
    """Availability, timing, deadlines and over-selection for a synchronous run.

    Only its clock carries over between rounds (a server callback, checkpointed as such):
    devices and availability are drawn from the seed, and ``_keep`` and ``_idle_s`` are set
    when a round samples, before that round's :meth:`admit` reads them.
    """

    def __init__(
        self,
        scenario: Scenario,
        timing: ClientTiming,
        availability: Availability,
        clock: SimulatedClock,
    ) -> None:
        self.scenario, self.timing = scenario, timing
        self.availability, self.clock = availability, clock
        self.systems = scenario.systems
        self.seed = scenario.scenario.seed
        self._keep = math.inf  # K of the current round under over-selection
        self._idle_s = 0.0
        self._steps: dict[int, int] = {}  # this round's partial work: client -> its steps

    def server_callbacks(self) -> list[ServerCallback]:
        return [self.clock]

    # ------------------------------------------------------------------ sampling

    @contextlib.contextmanager
    def sampling(self, phase: str, grid: Any, strategy: Any, server_round: int) -> Iterator[None]:
        """Flower's strategy samples among the clients online now, as many as it would
        (times 1 + o for training under over-selection)."""
        strategy_config = self.scenario.strategy
        fraction = getattr(strategy_config, f"fraction_{phase}")
        least = getattr(strategy_config, f"min_{phase}_nodes")
        if phase == "train":
            self._idle_s = self.wait_for(least)
        online = self.availability.online(self.clock.now_s)
        size = min(len(online), cohort_size(len(online), fraction, least))
        if phase == "train":
            self._keep = size if self.systems.over_selection > 0 else math.inf
            size = min(len(online), over_selected(size, self.systems.over_selection))
        grid.set_available(online)
        try:
            with fixed_cohort(strategy, phase, size):
                yield
        finally:
            grid.set_available(None)

    def wait_for(self, needed: int) -> float:
        """Advance the clock until ``needed`` clients are online; the seconds waited."""
        waited = 0.0
        while len(self.availability.online(self.clock.now_s)) < needed:
            if waited >= MAX_WAIT_S:
                from simfl.errors import SimflError

                raise SimflError(
                    f"fewer than {needed} clients online for 30 simulated days "
                    "(systems.availability vs strategy.min_train_nodes)"
                )
            self.clock.advance(WAIT_STEP_S)
            waited += WAIT_STEP_S
        return waited

    # ------------------------------------------------------------------ admission

    def faults(self, client: int, server_round: int) -> tuple[bool, float]:
        """Whether ``client`` hangs this round, and its slow-down factor (seeded)."""
        faults = self.systems.faults
        hangs = rng_for(self.seed, "fault-hang", client, server_round).random() < faults.hang
        slow = rng_for(self.seed, "fault-slow", client, server_round).random()
        return hangs, faults.slowdown_factor if slow < faults.slowdown_probability else 1.0

    def assign_work(self, server_round: int, messages: list[Message]) -> list[Message]:
        """With ``systems.partial_work``, each client that would miss the deadline is given
        the local steps that fit (:mod:`simfl.systems.partial_work`)."""
        from simfl.systems.partial_work import limit_steps, steps_within

        self._steps = {}
        if not self.systems.partial_work:
            return messages
        for message in messages:
            client = message.metadata.dst_node_id  # the grid's node ids are partitions
            bytes_down = message_bytes([message])  # the update travels back at this size
            _, slowdown = self.faults(client, server_round)
            deadline = self.systems.deadline_s
            steps = steps_within(self.timing, client, deadline, bytes_down, bytes_down, slowdown)
            if 0 < steps < self.timing.total_steps(client):
                limit_steps(message, steps)
                self._steps[client] = steps
        return messages

    def admit(self, exchange: TrainingRound) -> list[Message]:
        """Times the replies, advances the clock, records the drops; the kept replies."""
        messages, ok, partition_of = exchange.messages, exchange.ok, exchange.partition_of
        down = {message.metadata.dst_node_id: message_bytes([message]) for message in messages}
        replied = [
            (client, down[client], message_bytes([reply]), protocol_samples(reply))
            for reply in ok
            for client in [partition_of[reply.metadata.src_node_id]]
        ]
        outcome = self.settle(exchange.server_round, replied)
        self.clock.advance(outcome.seconds)
        exchange.record.add(
            {
                "sim_round_s": self._idle_s + outcome.seconds,
                "clients_aggregated": len(outcome.kept),
                "clients_dropped_deadline": outcome.dropped_deadline,
                "clients_dropped_availability": outcome.dropped_availability,
                "clients_dropped_crash": len(exchange.failures),
                **self.work_done(outcome.kept),
            },
            "systems",
        )
        return [reply for reply in ok if partition_of[reply.metadata.src_node_id] in outcome.kept]

    def work_done(self, kept: frozenset[int]) -> dict[str, float]:
        """Under partial work: how many kept clients did part of their work, and the mean
        fraction of it the kept clients did."""
        if not self.systems.partial_work:
            return {}
        fractions = [
            self._steps.get(c, self.timing.total_steps(c)) / max(self.timing.total_steps(c), 1)
            for c in kept
        ]
        return {
            "clients_partial_work": float(sum(c in self._steps for c in kept)),
            "work_fraction_mean": float(np.mean(fractions)) if fractions else math.nan,
        }

    def settle(self, server_round: int, replied: list[tuple[int, int, int, float]]) -> Settlement:
        """Which of the clients that replied (partition, bytes down, bytes up, protocol work)
        count, and when the round ends, for a round starting now (the clock is not advanced
        here)."""
        start = self.clock.now_s
        finishers: list[tuple[float, int]] = []
        events: list[float] = []  # when the server learns each client's outcome
        lost = hung = 0
        for client, bytes_down, bytes_up, protocol in replied:
            hangs, slowdown = self.faults(client, server_round)
            steps = self._steps.get(client)
            seconds = self.timing.seconds(client, bytes_down, bytes_up, slowdown, steps, protocol)
            offline = self.availability.online_until(client, start) - start
            if hangs:
                hung += 1
                events.append(math.inf)
            elif offline < seconds:
                lost += 1
                events.append(max(offline, 0.0))
            else:
                finishers.append((seconds, client))
                events.append(seconds)
        finishers.sort()
        end = max(events, default=0.0)
        if len(finishers) >= self._keep:
            end = min(end, finishers[int(self._keep) - 1][0])
        end = min(end, self.systems.deadline_s or self.scenario.resources.round_timeout_s)
        on_time = [client for seconds, client in finishers if seconds <= end]
        kept = frozenset(on_time if math.isinf(self._keep) else on_time[: int(self._keep)])
        return Settlement(kept, len(finishers) - len(kept) + hung, lost, end)


def protocol_samples(reply: Message) -> float:
    """The work the reply's protocol reports beside training (0 for a plain reply)."""
    return float(reply.content["metrics"].get(PROTOCOL_SAMPLES_KEY, 0.0))


@dataclass(frozen=True)
class Settlement:
    """A round's outcome: the clients whose updates count, the drops, its simulated seconds."""

    kept: frozenset[int]
    dropped_deadline: int  # finished too late, beyond the K fastest, or hung
    dropped_availability: int  # went offline before finishing
    seconds: float


def client_timing(plan: RunPlan) -> ClientTiming:
    """Training sizes from the client index and the devices drawn for this run."""
    from simfl.data.client_index import ClientIndex

    scenario = plan.scenario
    index = ClientIndex(plan.index_dir)
    sizes = np.array([len(index.client(c).train_rows) for c in range(scenario.data.num_clients)])
    profiles = draw_profiles(
        scenario.systems.devices, scenario.data.num_clients, scenario.scenario.seed
    )
    return ClientTiming(sizes, profiles, scenario.train.local_epochs, scenario.train.batch_size)


def systems_plan(plan: RunPlan) -> SystemsPlan:
    """The round plan for ``plan``'s scenario, its clock at zero."""
    scenario = plan.scenario
    systems = scenario.systems
    availability = build_availability(
        systems.availability, scenario.data.num_clients, scenario.scenario.seed
    )
    clock = SimulatedClock(systems.target_accuracy, systems.time_budget_h)
    return SystemsPlan(scenario, client_timing(plan), availability, clock)


__all__ = ["SystemsPlan", "systems_plan"]
