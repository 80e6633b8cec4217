"""The Flower ServerApp: rounds of a Flower strategy, counted, timed and reproducible.

Ours drives the strategy's own ``configure_*``/``aggregate_*`` (as ``Strategy.start`` does) and
adds what Flower leaves out: client failures are counted and fail the run below
``min_train_nodes``; node sampling is seeded per round over nodes ordered by partition id
(Flower's node ids are random per run); replies are aggregated in partition order, never in
arrival order; bytes on the wire and wall time are measured; federated evaluation is weighted
by each client's test examples. What is measured about the global model (central evaluation
first of all) comes from :mod:`simfl.engine.server_callbacks`, which may also stop the run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy

from simfl import registry
from simfl.engine.actor_restarts import ActorRestarts
from simfl.engine.checkpoint import Checkpointer, RunCheckpoint, Stateful, stateful_components
from simfl.engine.client_errors import client_traceback
from simfl.engine.deferred import DeferredCallbacks, PendingRound
from simfl.engine.extensions import (
    EvaluationData,
    ExchangeResult,
    Feature,
    features_for,
    single,
)
from simfl.engine.federated_evaluation import client_evaluations, federated_metrics
from simfl.engine.heap import long_lived_objects_frozen
from simfl.engine.interrupt import Interruption, RoundAbandoned
from simfl.engine.nodes import engine_slots, side_slots, wait_for_nodes
from simfl.engine.plan import RunPlan
from simfl.engine.records import ClientFailure, RoundRecord, client_updates, message_bytes
from simfl.engine.round_planner import RoundPlanner, TrainingRound
from simfl.engine.runtime import calls_per_exchange_here, evaluation_overlap_here
from simfl.engine.server_callbacks import (
    CentralEvaluation,
    RoundState,
    ServerCallback,
    can_overlap,
)
from simfl.errors import ClientFailuresError
from simfl.flower_compat.grid import VirtualClientGrid, seeded_sampling
from simfl.personalization import frozen_names, local_names, split_state
from simfl.seeding import derive_seed
from simfl.tracking.callbacks import RunCallback


def like(new: ArrayRecord, reference: ArrayRecord) -> ArrayRecord:
    """``new`` in the dtypes of ``reference``.

    Flower's FedOpt family multiplies float32 weights by numpy float64 scalars and returns
    float64: the global model would double its bytes on the wire and drift from the model's
    own precision. Casting back keeps every strategy's global model in the model's dtype.
    """
    if all(new[key].dtype == reference[key].dtype for key in new):
        return new
    return ArrayRecord({key: Array(new[key].numpy().astype(reference[key].dtype)) for key in new})


class FederationLoop:
    """Runs ``rounds`` of the strategy over the grid and reports each round to the callback.

    What the scenario's features add comes in through declared parts only: the round planner
    (who is sampled, whose update counts), the training exchange (how a training round's
    messages travel), and the server callbacks it is given. A strategy with a loop of its own
    (FedBuff) names a subclass in its registry entry.
    """

    def __init__(
        self,
        plan: RunPlan,
        grid: Grid,
        strategy: Strategy,
        server_callbacks: Sequence[ServerCallback],
        callback: RunCallback,
        features: Sequence[Feature] = (),
        checkpointer: Checkpointer | None = None,
        resume: RunCheckpoint | None = None,
        interruption: Interruption | None = None,
        restarts: ActorRestarts | None = None,
    ) -> None:
        self.plan, self.strategy = plan, strategy
        self.interruption = interruption or Interruption()  # never asked: runs to the end
        self.restarts = restarts or ActorRestarts(plan.scenario.resources.actor_restarts)
        self.server_callbacks, self.callback = list(server_callbacks), callback
        self.checkpointer, self.resume = checkpointer, resume
        self.seed = plan.scenario.scenario.seed
        self.timeout = plan.scenario.resources.round_timeout_s
        slots = wait_for_nodes(grid, engine_slots(plan.scenario), self.timeout, self.abandons_round)
        calls_for = calls_per_exchange_here(plan.scenario.resources)
        self.grid = VirtualClientGrid(
            grid,
            plan.scenario.data.num_clients,
            slots,
            calls_for,
            side_slots(plan.scenario),
            abandoned=self.abandons_round,
        )
        features = list(features)
        planner = single(features, lambda feature: feature.round_planner(plan), "round planner")
        self.round_plan: RoundPlanner = planner or RoundPlanner()
        self.server_callbacks += self.round_plan.server_callbacks()
        self.training_exchange = single(
            features, lambda feature: feature.training_exchange(plan), "training exchange"
        )
        # The pending round and where its deferred callbacks run (decided in run(), once
        # every callback has been added).
        self.deferred = DeferredCallbacks(self.grid, self.timeout, callback, checkpointer)

    def run(self) -> ArrayRecord:
        """Round 0 (or a checkpoint's round), then rounds until done or a callback stops."""
        self.deferred.overlap = overlap_mode(self.plan, self.server_callbacks, self.grid)
        try:
            arrays, server_round, stop = self.start()
            rounds = self.plan.scenario.scenario.rounds
            with long_lived_objects_frozen():
                while stop is None and server_round < rounds:
                    server_round += 1
                    arrays, stop = self.run_round(server_round, arrays)
        except BaseException:
            with contextlib.suppress(Exception):  # keep the last complete round's record
                self.deferred.settle(remote=False)
            raise
        if stop is not None:
            self.callback.on_stop(server_round, stop)
        return arrays

    def abandons_round(self) -> bool:
        """Whether a stop signal asks to give up the round in progress (see
        :mod:`simfl.engine.interrupt`)."""
        return self.interruption.abandons_round(self.plan.scenario.resources.stop_grace_s)

    def check_abandoned(self, server_round: int) -> None:
        if self.abandons_round():
            raise RoundAbandoned(server_round)

    def start(self) -> tuple[ArrayRecord, int, str | None]:
        """The global model and round to go on from: the resumed checkpoint's, or round 0's
        (the initial model, evaluated)."""
        if self.resume is not None:
            arrays = self.resume.restore(self.strategy, self.state_components())
            return arrays, self.resume.server_round, None
        arrays = initial_shared_arrays(self.plan)
        # In the foreground: the cold start is measured up to round 0's record.
        stop = self.end_round(RoundRecord(round=0), time.perf_counter(), arrays, None, False)
        return arrays, 0, stop

    def state_components(self) -> dict[str, Stateful]:
        """What a checkpoint holds besides the global model and Flower's strategy state: every
        part of the run whose state outlives a round, by a stable name. A loop with state of
        its own (FedBuff's clients in flight) adds itself."""
        return stateful_components(self.strategy, self.round_plan, self.server_callbacks)

    def run_round(self, server_round: int, arrays: ArrayRecord) -> tuple[ArrayRecord, str | None]:
        record, start = RoundRecord(round=server_round), time.perf_counter()
        self.restarts.begin_round()
        previous = arrays
        arrays = self.train(server_round, arrays, record)
        record.train_seconds = time.perf_counter() - start
        self.federated_evaluate(server_round, arrays, record)
        record.evaluate_seconds = time.perf_counter() - start - record.train_seconds
        return arrays, self.end_round(record, start, arrays, previous)

    def end_round(
        self,
        record: RoundRecord,
        start: float,
        arrays: ArrayRecord,
        previous: ArrayRecord | None,
        overlap: bool = True,
    ) -> str | None:
        """Run the server callbacks and take the round's checkpoint; the round is reported
        when its deferred callbacks have run (:mod:`simfl.engine.deferred`): at once
        without overlap, in round 0 (so the cold start includes it) and in the last round;
        else while the next round's clients train, and reported once they have replied."""
        self.deferred.settle()  # a round without an exchange has not settled the one before
        before_callbacks = len(record.metrics)
        state = RoundState(record.round, arrays, previous, record)
        rounds = self.plan.scenario.scenario.rounds
        overlap = overlap and self.deferred.defers(record.round, rounds)
        deferred, stop = self.after_round(state, overlap)
        if stop is None and self.interruption.requested and record.round < rounds:
            stop = self.interruption.reason()  # the last round taken: checkpointed below
        last = stop is not None or record.round == rounds
        settles_now = not deferred or last
        snapshot = None
        if self.checkpointer is not None and record.round > 0:
            snapshot = self.checkpointer.snapshot(
                record.round, arrays, self.strategy, self.state_components(), last, not settles_now
            )
        pending = PendingRound(record, start, before_callbacks, state, deferred, snapshot)
        self.deferred.hold(pending, settle_now=settles_now)
        return stop

    def after_round(
        self, state: RoundState, overlap: bool
    ) -> tuple[list[tuple[str, ServerCallback]], str | None]:
        """Every server callback adds its metrics; the first stop reason wins. With
        ``overlap``, those that may overlap the next round are returned, not run."""
        deferred: list[tuple[str, ServerCallback]] = []
        stop = None
        for callback in self.server_callbacks:
            name = type(callback).__name__
            if overlap and callback.overlaps_next_round:
                deferred.append((name, callback))
                continue
            result = callback.after_round(state)
            if result is None:
                continue
            state.record.add(result.metrics, name)
            stop = stop or result.stop
        return deferred, stop

    def exchange(
        self, server_round: int, phase: str, messages: list[Message]
    ) -> tuple[list[Message], list[ClientFailure]]:
        """Send, receive, sort replies by partition and split off the failures."""
        # The previous round's central evaluation runs meanwhile.
        replies = self.deferred.settled_after(
            lambda side: self.grid.exchange(messages, side, timeout=self.timeout)
        )
        self.check_abandoned(server_round)
        self.report_restarts(server_round, phase)
        order = self.grid.partition_of
        replies.sort(key=lambda reply: order.get(reply.metadata.src_node_id, -1))
        failures = [
            ClientFailure(
                server_round,
                phase,
                order.get(reply.metadata.src_node_id, -1),
                reply.metadata.src_node_id,
                client_traceback(reply.error.reason),
            )
            for reply in replies
            if reply.has_error()
        ]
        missing = len(messages) - len(replies)
        failures += [
            ClientFailure(server_round, phase, -1, -1, "no reply before resources.round_timeout_s")
        ] * missing
        if failures:
            self.callback.on_client_failures(failures)
        return [reply for reply in replies if not reply.has_error()], failures

    def train(self, server_round: int, arrays: ArrayRecord, record: RoundRecord) -> ArrayRecord:
        config = ConfigRecord(self.plan.scenario.strategy.client_train_config())
        with (
            seeded_sampling(derive_seed(self.seed, "sample-train", server_round)),
            self.round_plan.sampling("train", self.grid, self.strategy, server_round),
        ):
            messages = list(self.strategy.configure_train(server_round, arrays, config, self.grid))
        messages = self.round_plan.assign_work(server_round, messages)
        result = self.train_exchange(server_round, messages)
        ok, failures = result.ok, result.failures
        record.clients_sampled, record.clients_succeeded = len(messages), len(ok)
        record.clients_failed = len(failures)
        record.bytes_down, record.bytes_up = result.bytes_down, result.bytes_up
        if result.metrics:
            record.add(result.metrics, self.training_exchange.name)  # type: ignore[union-attr]
        required = max(1, self.plan.scenario.strategy.min_train_nodes)
        if len(ok) < required:
            self.callback.on_round_end(record)
            first = failures[0].reason if failures else "no client replied"
            raise ClientFailuresError(server_round, len(ok), required, first)
        training = TrainingRound(
            server_round, messages, ok, failures, record, self.grid.partition_of
        )
        ok = self.round_plan.admit(training)
        if self.training_exchange is None:  # SecAgg+'s replies are masked sums, not clients'
            self.callback.on_client_updates(client_updates(server_round, ok, training.partition_of))
        new_arrays, metrics = self.strategy.aggregate_train(server_round, ok)
        if metrics is not None:
            record.add(
                {key: float(metrics.get(key, np.nan)) for key in ("train_loss", "train_accuracy")},
                "training",
            )
        return like(new_arrays, arrays) if new_arrays is not None else arrays

    def train_exchange(self, server_round: int, messages: list[Message]) -> ExchangeResult:
        """The training round's exchange: the clients' replies, or what a feature's training
        exchange (SecAgg+) returns, run after any side tasks (it cannot carry them)."""
        transport = self.training_exchange
        if transport is None:
            ok, failures = self.exchange(server_round, "train", messages)
            return ExchangeResult(ok, failures, message_bytes(messages), message_bytes(ok), {})
        result = self.deferred.settled_after(
            lambda side: self.deferred.side_tasks_then(
                side, lambda: transport.exchange(server_round, messages, self.grid)
            )
        )
        self.check_abandoned(server_round)
        self.report_restarts(server_round, "train")
        if result.failures:
            self.callback.on_client_failures(result.failures)
        return result

    def report_restarts(self, server_round: int, phase: str) -> None:
        """Client actors that died in the exchange (replaced, their clients rerun) go to the
        failure log as infrastructure failures; past the round's budget the run stops."""
        infrastructure = self.restarts.take(server_round, phase)
        if infrastructure:
            self.callback.on_client_failures(infrastructure)

    def federated_evaluate(
        self, server_round: int, arrays: ArrayRecord, record: RoundRecord
    ) -> None:
        with (
            seeded_sampling(derive_seed(self.seed, "sample-evaluate", server_round)),
            self.round_plan.sampling("evaluate", self.grid, self.strategy, server_round),
        ):
            messages = list(
                self.strategy.configure_evaluate(server_round, arrays, ConfigRecord(), self.grid)
            )
        if not messages:
            return
        ok, failures = self.exchange(server_round, "evaluate", messages)
        record.eval_clients_sampled, record.eval_clients_succeeded = len(messages), len(ok)
        record.eval_clients_failed = len(failures)
        record.bytes_down += message_bytes(messages)
        if not ok:
            return
        evaluations = client_evaluations(server_round, ok, self.grid.partition_of)
        self.callback.on_client_evaluations(evaluations)
        record.add(federated_metrics([reply.content["metrics"] for reply in ok]), "evaluation")
        self.strategy.aggregate_evaluate(server_round, ok)


def initial_shared_arrays(plan: RunPlan) -> ArrayRecord:
    """The initial model's shared part: what trains and is not kept local by the strategy."""
    model = plan.initial_model()
    local = local_names(model, plan.scenario.strategy)
    shared, _ = split_state(model.state_dict(), local, frozen_names(model))
    return ArrayRecord(shared)


def overlap_mode(plan: RunPlan, callbacks: Sequence[object], grid: VirtualClientGrid) -> str:
    """Where the callbacks that may overlap the next round run: "driver", "actors" or "off"
    (in order), by ``resources.evaluation_overlap`` and this machine (simfl.engine.runtime)."""
    if not can_overlap(list(callbacks)):
        return "off"
    mode = evaluation_overlap_here(plan.scenario.resources)
    return "off" if mode == "actors" and not grid.side_slots else mode


def build_server_app(
    plan: RunPlan,
    evaluation: EvaluationData,
    callback: RunCallback,
    server_callbacks: Sequence[ServerCallback] = (),
    checkpointer: Checkpointer | None = None,
    resume: RunCheckpoint | None = None,
    interruption: Interruption | None = None,
    restarts: ActorRestarts | None = None,
) -> ServerApp:
    """The ServerApp: the strategy as the scenario's features wrap it; after every round,
    central evaluation on ``evaluation``, the features' callbacks, then ``server_callbacks``;
    a checkpoint every few rounds; or going on from ``resume``; stopping when
    ``interruption`` asks; ``restarts`` counts the client actors that died and were replaced."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        features = features_for(plan.scenario)
        entry = registry.STRATEGIES[plan.scenario.strategy.name]
        strategy = entry.load()(plan.scenario.strategy, plan.scenario)
        for feature in features:
            strategy = feature.wrap_strategy(plan, strategy)
        callbacks: list[ServerCallback] = [
            CentralEvaluation(plan, evaluation.rows, evaluation.labels)
        ]
        for feature in features:
            callbacks += feature.server_callbacks(plan, evaluation)
        callbacks += server_callbacks
        loop = entry.load_loop()
        loop(
            plan, grid, strategy, callbacks, callback, features, checkpointer, resume,
            interruption, restarts,
        ).run()  # fmt: skip

    return app
