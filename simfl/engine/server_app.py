"""The Flower ServerApp: rounds of a Flower strategy, counted, timed and reproducible.

Ours drives the strategy's own ``configure_*``/``aggregate_*`` (as ``Strategy.start`` does) and
adds what Flower leaves out: client failures are counted and fail the run below
``min_train_nodes``; node sampling is seeded per round over nodes ordered by partition id
(Flower's node ids are random per run); replies are aggregated in partition order, never in
arrival order; bytes on the wire and wall time are measured; the global model is evaluated
centrally on held-out speakers every round.

With partial sharing (FedPer, FedBN) or frozen parameters (a frozen Whisper encoder) the
server's model is the shared part only: that is what the strategy aggregates and what travels.
Its central evaluation completes it with the initial local and frozen parts, the same ones an
unseen client starts from.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy

from simfl import registry
from simfl.data.features import FeatureStore
from simfl.engine.client_app import client_traceback
from simfl.engine.plan import RunPlan
from simfl.engine.records import ClientEvaluation, ClientFailure, RoundRecord
from simfl.errors import ClientFailuresError, SimflError
from simfl.personalization import frozen_names, local_names, split_state
from simfl.seeding import derive_seed
from simfl.tracking.callbacks import RunCallback
from simfl.training import LoopStats, cpu_state, evaluate, pick_device

PARTITION_ID_KEY = "partition-id"


class PartitionOrderedGrid:
    """A Grid whose node ids come in partition order, so seeded sampling picks the same clients."""

    def __init__(self, grid: Grid, partition_of: dict[int, int]) -> None:
        self._grid = grid
        self.partition_of = partition_of

    def get_node_ids(self) -> list[int]:
        return sorted(self._grid.get_node_ids(), key=lambda node: self.partition_of[node])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)


def message_bytes(messages: Iterable[Message]) -> int:
    """Bytes of array payload in these messages (what dominates the wire)."""
    total = 0
    for message in messages:
        if message.has_error():
            continue
        for record in message.content.array_records.values():
            total += sum(len(array.data) for array in record.values())
    return total


def like(new: ArrayRecord, reference: ArrayRecord) -> ArrayRecord:
    """``new`` in the dtypes of ``reference``.

    Flower's FedOpt family multiplies float32 weights by numpy float64 scalars and returns
    float64: the global model would double its bytes on the wire and drift from the model's
    own precision. Casting back keeps every strategy's global model in the model's dtype.
    """
    if all(new[key].dtype == reference[key].dtype for key in new):
        return new
    return ArrayRecord({key: Array(new[key].numpy().astype(reference[key].dtype)) for key in new})


class CentralEvaluator:
    """Evaluates global weights on the held-out test speakers, loaded into memory once."""

    def __init__(self, plan: RunPlan, test_rows: np.ndarray, test_labels: np.ndarray) -> None:
        initial = plan.initial_model()
        self.base = cpu_state(initial)  # completes a shared-only global model
        self.model = initial.to(pick_device(plan.scenario.resources.num_gpus))
        self.features = torch.from_numpy(FeatureStore.open(plan.test_store).read(test_rows))
        self.labels = torch.from_numpy(np.asarray(test_labels, dtype=np.int64))
        self.batch_size = plan.scenario.train.eval_batch_size
        self.task = plan.task()

    def __call__(self, arrays: ArrayRecord) -> LoopStats:
        self.model.load_state_dict({**self.base, **arrays.to_torch_state_dict()}, strict=True)
        return evaluate(self.model, self.features, self.labels, self.batch_size, self.task)


def record_central(record: RoundRecord, stats: LoopStats) -> None:
    """Central loss and accuracy, plus WER and CER when the task reports them."""
    record.central_loss, record.central_accuracy = stats.loss, stats.accuracy
    record.central_wer = stats.extra.get("wer", record.central_wer)
    record.central_cer = stats.extra.get("cer", record.central_cer)


class FederationLoop:
    """Runs ``rounds`` of the strategy over the grid and reports each round to the callback."""

    def __init__(
        self,
        plan: RunPlan,
        grid: Grid,
        strategy: Strategy,
        evaluator: CentralEvaluator,
        callback: RunCallback,
    ) -> None:
        self.plan, self.strategy, self.evaluator, self.callback = (
            plan,
            strategy,
            evaluator,
            callback,
        )
        self.seed = plan.scenario.scenario.seed
        self.timeout = plan.scenario.resources.round_timeout_s
        partition_of = discover_partitions(grid, plan.scenario.data.num_clients, self.timeout)
        self.grid = PartitionOrderedGrid(grid, partition_of)

    def initial_arrays(self) -> ArrayRecord:
        return initial_shared_arrays(self.plan)

    def run(self) -> ArrayRecord:
        arrays = self.initial_arrays()
        start = time.perf_counter()
        record = RoundRecord(round=0)
        record_central(record, self.evaluator(arrays))
        record.central_eval_seconds = record.round_seconds = time.perf_counter() - start
        self.callback.on_round_end(record)
        for server_round in range(1, self.plan.scenario.scenario.rounds + 1):
            arrays = self.run_round(server_round, arrays)
        return arrays

    def run_round(self, server_round: int, arrays: ArrayRecord) -> ArrayRecord:
        record, start = RoundRecord(round=server_round), time.perf_counter()
        arrays = self.train(server_round, arrays, record)
        record.train_seconds = time.perf_counter() - start
        self.federated_evaluate(server_round, arrays, record)
        record.evaluate_seconds = time.perf_counter() - start - record.train_seconds
        central_start = time.perf_counter()
        record_central(record, self.evaluator(arrays))
        record.central_eval_seconds = time.perf_counter() - central_start
        record.round_seconds = time.perf_counter() - start
        self.callback.on_round_end(record)
        return arrays

    def exchange(
        self, server_round: int, phase: str, messages: list[Message]
    ) -> tuple[list[Message], list[ClientFailure]]:
        """Send, receive, sort replies by partition and split off the failures."""
        replies = list(self.grid.send_and_receive(messages, timeout=self.timeout))
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
        random.seed(
            derive_seed(self.seed, "sample-train", server_round)
        )  # Flower samples with `random`
        config = ConfigRecord(self.plan.scenario.strategy.client_train_config())
        messages = list(self.strategy.configure_train(server_round, arrays, config, self.grid))
        ok, failures = self.exchange(server_round, "train", messages)
        record.clients_sampled, record.clients_succeeded = len(messages), len(ok)
        record.clients_failed = len(failures)
        record.bytes_down, record.bytes_up = message_bytes(messages), message_bytes(ok)
        required = max(1, self.plan.scenario.strategy.min_train_nodes)
        if len(ok) < required:
            self.callback.on_round_end(record)
            first = failures[0].reason if failures else "no client replied"
            raise ClientFailuresError(server_round, len(ok), required, first)
        new_arrays, metrics = self.strategy.aggregate_train(server_round, ok)
        if metrics is not None:
            record.train_loss = float(metrics.get("train_loss", np.nan))
            record.train_accuracy = float(metrics.get("train_accuracy", np.nan))
        return like(new_arrays, arrays) if new_arrays is not None else arrays

    def federated_evaluate(
        self, server_round: int, arrays: ArrayRecord, record: RoundRecord
    ) -> None:
        random.seed(derive_seed(self.seed, "sample-evaluate", server_round))
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
        metric = lambda key: np.array([float(r.content["metrics"][key]) for r in ok])  # noqa: E731
        self.callback.on_client_evaluations(client_evaluations(server_round, ok, self.grid))
        record.fed_loss_mean = float(metric("eval_loss").mean())
        (
            record.fed_accuracy_mean,
            record.fed_accuracy_std,
            record.fed_accuracy_worst10,
        ) = spread(metric("eval_accuracy"))
        record.pers_loss_mean = float(metric("pers_loss").mean())
        (
            record.pers_accuracy_mean,
            record.pers_accuracy_std,
            record.pers_accuracy_worst10,
        ) = spread(metric("pers_accuracy"))
        if all("eval_wer" in reply.content["metrics"] for reply in ok):
            wer = metric("eval_wer")
            # Worst 10% of clients by WER are those with the *highest* WER.
            worst = -spread(-wer)[2]
            record.fed_wer_mean, record.fed_wer_std, record.fed_wer_worst10 = (
                float(wer.mean()),
                float(wer.std()),
                worst,
            )
            record.fed_cer_mean = float(metric("eval_cer").mean())
        self.strategy.aggregate_evaluate(server_round, ok)


def client_evaluations(
    server_round: int, replies: list[Message], grid: PartitionOrderedGrid
) -> list[ClientEvaluation]:
    """Each client's evaluation metrics (``num-examples`` included), keyed by its partition."""
    order = grid.partition_of
    return [
        ClientEvaluation(
            server_round,
            order.get(reply.metadata.src_node_id, -1),
            {key: float(value) for key, value in reply.content["metrics"].items()},
        )
        for reply in replies
    ]


def initial_shared_arrays(plan: RunPlan) -> ArrayRecord:
    """The initial model's shared part: what trains and is not kept local by the strategy."""
    model = plan.initial_model()
    local = local_names(model, plan.scenario.strategy)
    shared, _ = split_state(model.state_dict(), local, frozen_names(model))
    return ArrayRecord(shared)


def spread(accuracies: np.ndarray) -> tuple[float, float, float]:
    """Mean, standard deviation and mean of the worst 10% of clients (at least one)."""
    worst = np.sort(accuracies)[: max(1, int(np.ceil(0.1 * len(accuracies))))]
    return float(accuracies.mean()), float(accuracies.std()), float(worst.mean())


def wait_for_nodes(grid: Grid, expected: int, timeout: float) -> list[int]:
    """Flower registers simulated nodes while the ServerApp already runs: wait for all."""
    deadline = time.monotonic() + timeout
    while len(node_ids := sorted(grid.get_node_ids())) < expected:
        if time.monotonic() > deadline:
            raise SimflError(f"only {len(node_ids)} of {expected} nodes connected in {timeout} s")
        time.sleep(0.05)
    return node_ids


def discover_partitions(grid: Grid, expected: int, timeout: float) -> dict[int, int]:
    """Ask every node which partition it serves (one tiny query message per node)."""
    node_ids = wait_for_nodes(grid, expected, timeout)
    queries = [
        Message(RecordDict(), dst_node_id=node, message_type=MessageType.QUERY) for node in node_ids
    ]
    replies = list(grid.send_and_receive(queries, timeout=timeout))
    failed = [reply for reply in replies if reply.has_error()]
    if failed or len(replies) != len(node_ids):
        reason = failed[0].error.reason if failed else "some nodes did not answer"
        raise SimflError(f"could not map nodes to partitions: {reason}")
    return {
        reply.metadata.src_node_id: int(reply.content["info"][PARTITION_ID_KEY])
        for reply in replies
    }


def build_server_app(
    plan: RunPlan, test_rows: np.ndarray, test_labels: np.ndarray, callback: RunCallback
) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        entry = registry.STRATEGIES[plan.scenario.strategy.name]
        strategy = entry.factory(plan.scenario.strategy, plan.scenario)
        evaluator = CentralEvaluator(plan, test_rows, test_labels)
        FederationLoop(plan, grid, strategy, evaluator, callback).run()

    return app
