"""Asynchronous FedBuff (Nguyen et al., AISTATS 2022), FedAsync-style with K = 1.

C clients train at once, each on the model version it downloaded. The server takes their
updates in order of *simulated* finish time (never wall-clock arrival, so runs are
bit-identical), weights each by its staleness s(τ) = (1 + τ)^-a, and every K updates applies the
buffer: Δ = Σ s(τ_k) n_k Δ_k / Σ n_k (or unweighted), m ← β m + Δ, w ← w + η_g m. A finished
client is replaced at once by one sampled from the available idle clients, starting from the
model of that moment.

Training is real, on Flower's Ray actors: a client's simulated duration is known when it is
launched (its data size, device and the model's bytes), so every launch since the last
exchange is trained in one batch of messages through :meth:`FederationLoop.exchange`, with
failures, bytes and timings counted as in synchronous rounds. One "round" of the records is one
server update.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp.strategy import FedAvg

from simfl.engine.checkpoint import Stateful, array_record, plain, tensors
from simfl.engine.records import RoundRecord, message_bytes
from simfl.engine.server_app import FederationLoop
from simfl.errors import ClientFailuresError
from simfl.seeding import derive_seed
from simfl.systems.availability import build_availability
from simfl.systems.clock import SimulatedClock
from simfl.systems.rounds import WAIT_STEP_S, SystemsPlan, client_timing

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy import FedBuffConfig


@dataclass(frozen=True)
class BufferedUpdate:
    """One client's update as the server buffers it."""

    delta: dict[str, np.ndarray]  # trained − downloaded weights (float64)
    num_examples: int
    staleness: int
    train_loss: float
    train_accuracy: float


class FedBuff(FedAvg):
    """The server rule. Evaluation (``configure_evaluate``/``aggregate_evaluate``) is Flower's
    FedAvg's; training is driven by :class:`FedBuffLoop`, which calls :meth:`apply`."""

    def __init__(self, config: FedBuffConfig) -> None:
        super().__init__(**config.sampling_kwargs())
        self.concurrency, self.buffer_size = config.concurrency, config.buffer_size
        self.staleness_exponent = config.staleness_exponent
        self.server_learning_rate = config.server_learning_rate
        self.server_momentum = config.server_momentum
        self.weighting = config.weighting
        self.momentum: dict[str, np.ndarray] | None = None

    def state_dict(self) -> dict[str, Any]:
        """The server momentum m (None until the first update that uses it)."""
        return {"momentum": None if self.momentum is None else tensors(self.momentum)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["momentum"]
        self.momentum = None if saved is None else {k: t.numpy() for k, t in saved.items()}

    def staleness_weight(self, staleness: int) -> float:
        """s(τ) = (1 + τ)^-a; a = 0.5 is the paper's 1/√(1 + τ)."""
        return float((1.0 + staleness) ** -self.staleness_exponent)

    def apply(self, arrays: ArrayRecord, buffer: list[BufferedUpdate]) -> ArrayRecord:
        """The global model after one server update with ``buffer``."""
        weights = np.array(
            [u.num_examples if self.weighting == "num_examples" else 1.0 for u in buffer],
            dtype=np.float64,
        )
        weights /= weights.sum()
        step = {
            name: sum(
                w * self.staleness_weight(u.staleness) * u.delta[name]
                for w, u in zip(weights, buffer, strict=True)
            )
            for name in buffer[0].delta
        }
        if self.server_momentum > 0.0:
            if self.momentum is None:
                self.momentum = {name: np.zeros_like(value) for name, value in step.items()}
            for name, value in step.items():
                self.momentum[name] = self.server_momentum * self.momentum[name] + value
            step = self.momentum
        out = {}
        for name in arrays:
            current = arrays[name].numpy()
            updated = current.astype(np.float64) + self.server_learning_rate * step[name]
            if not np.issubdtype(current.dtype, np.floating):
                updated = np.rint(updated)
            out[name] = Array(updated.astype(current.dtype))
        return ArrayRecord(out)


def build_fedbuff(config: FedBuffConfig, scenario: Scenario | None = None) -> FedBuff:
    """FedBuff as in Nguyen et al. (2022), with the differences in simfl's fidelity note."""
    return FedBuff(config)


@dataclass(order=True)
class Launch:
    """A client at work: heap-ordered by simulated finish time, then partition."""

    finish_s: float
    partition: int
    start_s: float = field(compare=False)
    version: int = field(compare=False)
    outcome: str = field(compare=False, default="ok")  # ok | hang | offline | late
    trained: bool = field(compare=False, default=False)
    wake: bool = field(compare=False, default=False)  # no client: look again at finish_s
    # The trained model and the reply's metrics, once trained (None: the client failed).
    arrays: ArrayRecord | None = field(compare=False, default=None)
    metrics: dict[str, Any] | None = field(compare=False, default=None)

    def state_dict(self) -> dict[str, Any]:
        """This launch as tensors and plain values (times as Python floats: the same numbers)."""
        return {
            "finish_s": float(self.finish_s),
            "partition": int(self.partition),
            "start_s": float(self.start_s),
            "version": int(self.version),
            "outcome": self.outcome,
            "trained": self.trained,
            "wake": self.wake,
            "arrays": None if self.arrays is None else tensors(self.arrays),
            "metrics": None if self.metrics is None else plain(self.metrics),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Launch:
        arrays = state["arrays"]
        return cls(**{**state, "arrays": None if arrays is None else array_record(arrays)})


class FedBuffLoop(FederationLoop):
    """The asynchronous server loop; each ``train`` call runs until one server update."""

    def __init__(self, plan: Any, grid: Any, strategy: FedBuff, *args: Any) -> None:
        super().__init__(plan, grid, strategy, *args)
        scenario = plan.scenario
        if not isinstance(self.round_plan, SystemsPlan):  # FedBuff always needs a clock
            systems = scenario.systems
            clock = SimulatedClock(systems.target_accuracy, systems.time_budget_h)
            availability = build_availability(
                systems.availability, scenario.data.num_clients, self.seed
            )
            self.round_plan = SystemsPlan(scenario, client_timing(plan), availability, clock)
            self.server_callbacks += self.round_plan.server_callbacks()
        self.systems: SystemsPlan = self.round_plan
        self.clock = self.systems.clock
        self.version = 0
        self.models: dict[int, ArrayRecord] = {}  # versions still held by working clients
        self.working: list[Launch] = []  # heap
        self.launches = 0
        self.model_bytes = 0

    # ------------------------------------------------------------------ checkpoints

    def state_components(self) -> dict[str, Stateful]:
        return {**super().state_components(), "federation-loop": self}

    def state_dict(self) -> dict[str, Any]:
        """The server between two updates: the clients at work (in heap order, with what the
        trained ones sent), the model versions they downloaded, the version and launch
        counters and the model's bytes on the wire. The clock is the round plan's, a server
        callback checkpointed on its own; FedBuff's momentum is the strategy's."""
        return {
            "version": self.version,
            "launches": self.launches,
            "model_bytes": self.model_bytes,
            "models": {version: tensors(model) for version, model in self.models.items()},
            "working": [launch.state_dict() for launch in self.working],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.version, self.launches = state["version"], state["launches"]
        self.model_bytes = state["model_bytes"]
        self.models = {version: array_record(model) for version, model in state["models"].items()}
        self.working = [Launch.from_state(launch) for launch in state["working"]]

    # ------------------------------------------------------------------ launching

    def busy(self) -> set[int]:
        return {launch.partition for launch in self.working if not launch.wake}

    def launch(self, partition: int) -> None:
        """Start ``partition`` now on the current model; its outcome is decided here."""
        start = self.clock.now_s
        hangs, slowdown = self.systems.faults(partition, self.version + 1)
        seconds = self.systems.timing.seconds(
            partition, self.model_bytes, self.model_bytes, slowdown
        )
        limit = self.systems.systems.deadline_s or self.timeout
        offline = self.systems.availability.online_until(partition, start) - start
        outcome, finish = "ok", seconds
        if hangs:
            outcome, finish = "hang", limit
        elif offline < seconds:
            outcome, finish = "offline", max(offline, 0.0)
        elif seconds > limit:
            outcome, finish = "late", limit
        launch = Launch(start + finish, partition, start, self.version, outcome)
        heapq.heappush(self.working, launch)
        self.launches += 1

    def fill(self) -> None:
        """Launch clients until C work (or nobody idle is online: look again later)."""
        strategy: FedBuff = self.strategy  # type: ignore[assignment]
        online = self.systems.availability.online(self.clock.now_s)
        idle = [c for c in online if c not in self.busy()]
        wanted = strategy.concurrency - len(self.busy())
        if wanted <= 0:
            return
        if not idle:
            if not any(launch.wake for launch in self.working):
                heapq.heappush(
                    self.working,
                    Launch(
                        self.clock.now_s + WAIT_STEP_S,
                        -1,
                        self.clock.now_s,
                        self.version,
                        wake=True,
                    ),
                )
            return
        if self.launches == 0:  # the first cohort is drawn as a synchronous round 1 would be
            rng = random.Random(derive_seed(self.seed, "sample-train", 1))
            chosen = sorted(rng.sample(idle, min(wanted, len(idle))))
        else:
            rng = random.Random(derive_seed(self.seed, "fedbuff-replace", self.launches))
            chosen = sorted(rng.sample(idle, min(wanted, len(idle))))
        for partition in chosen:
            self.launch(partition)

    # ------------------------------------------------------------------ training

    def train_pending(self, server_round: int, record: RoundRecord) -> None:
        """Train every launched, untrained client in one exchange (their models are fixed)."""
        pending = [launch for launch in self.working if not launch.trained and not launch.wake]
        if not pending:
            return
        config = self.plan.scenario.strategy.client_train_config()
        messages = []
        for launch in sorted(pending, key=lambda launch: launch.partition):
            content = RecordDict(
                {
                    "arrays": self.models[launch.version],
                    "config": ConfigRecord({**config, "server-round": launch.version + 1}),
                }
            )
            messages.append(
                Message(
                    content=content, dst_node_id=launch.partition, message_type=MessageType.TRAIN
                )
            )
        ok, failures = self.exchange(server_round, "train", messages)
        by_partition = {self.grid.partition_of[r.metadata.src_node_id]: r for r in ok}
        for launch in pending:
            launch.trained = True
            if (reply := by_partition.get(launch.partition)) is not None:
                launch.arrays = reply.content["arrays"]
                launch.metrics = dict(reply.content["metrics"])
        record.clients_sampled += len(messages)
        record.clients_succeeded += len(ok)
        record.clients_failed += len(failures)
        record.bytes_down += message_bytes(messages)
        record.bytes_up += message_bytes(ok)

    def train(self, server_round: int, arrays: ArrayRecord, record: RoundRecord) -> ArrayRecord:
        strategy: FedBuff = self.strategy  # type: ignore[assignment]
        if self.launches == 0:
            self.model_bytes = sum(len(array.data) for array in arrays.values())
        self.models[self.version] = arrays
        self.fill()
        start_s, buffer = self.clock.now_s, []
        drops = {"deadline": 0, "availability": 0, "crash": 0}
        events = 0
        while len(buffer) < strategy.buffer_size:
            events += 1
            if events > 100 * strategy.concurrency + 1000:
                raise ClientFailuresError(
                    server_round,
                    len(buffer),
                    strategy.buffer_size,
                    "no usable update for 100·C client finishes",
                )
            if not self.working[0].trained and not self.working[0].wake:
                self.train_pending(server_round, record)
            launch = heapq.heappop(self.working)
            self.clock.advance(launch.finish_s - self.clock.now_s)
            if not launch.wake:
                update = self.receive(launch, drops)
                if update is not None:
                    buffer.append(update)
            if len(buffer) < strategy.buffer_size:
                self.fill()
        new_arrays = strategy.apply(arrays, buffer)
        self.version += 1
        self.models[self.version] = new_arrays
        self.forget_unused_models()
        self.record_update(record, buffer, drops, self.clock.now_s - start_s)
        return new_arrays

    def receive(self, launch: Launch, drops: dict[str, int]) -> BufferedUpdate | None:
        """The update of a finished client, or None (counted) if it was lost."""
        if launch.outcome in ("hang", "late"):
            drops["deadline"] += 1
            return None
        if launch.outcome == "offline":
            drops["availability"] += 1
            return None
        if launch.arrays is None or launch.metrics is None:
            drops["crash"] += 1
            return None
        downloaded = self.models[launch.version]
        trained, metrics = launch.arrays, launch.metrics
        delta = {
            name: trained[name].numpy().astype(np.float64)
            - downloaded[name].numpy().astype(np.float64)
            for name in downloaded
        }
        return BufferedUpdate(
            delta,
            int(metrics["num-examples"]),
            self.version - launch.version,
            float(metrics["train_loss"]),
            float(metrics["train_accuracy"]),
        )

    def forget_unused_models(self) -> None:
        needed = {launch.version for launch in self.working} | {self.version}
        self.models = {v: m for v, m in self.models.items() if v in needed}

    def record_update(
        self,
        record: RoundRecord,
        buffer: list[BufferedUpdate],
        drops: dict[str, int],
        seconds: float,
    ) -> None:
        examples = np.array([u.num_examples for u in buffer], dtype=float)
        staleness = np.array([u.staleness for u in buffer], dtype=float)
        record.add(
            {
                "train_loss": float(np.average([u.train_loss for u in buffer], weights=examples)),
                "train_accuracy": float(
                    np.average([u.train_accuracy for u in buffer], weights=examples)
                ),
            },
            "training",
        )
        record.add(
            {
                "sim_round_s": seconds,
                "clients_aggregated": len(buffer),
                "clients_dropped_deadline": drops["deadline"],
                "clients_dropped_availability": drops["availability"],
                "clients_dropped_crash": drops["crash"],
                "staleness_mean": float(staleness.mean()),
                "staleness_max": float(staleness.max()),
            },
            "fedbuff",
        )
