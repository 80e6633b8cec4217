"""The Flower ClientApp: local training and evaluation on one client's rows.

Flower pickles the ClientApp into a Ray actor for every message, so anything built here would
be rebuilt per call. Model, feature store and client index are therefore kept in a small
per-process cache (:class:`WorkerCache`): a Ray actor is a long-lived process serving many
clients, and this is the only state it keeps between calls.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from simfl.data.client_index import ClientIndex
from simfl.data.features import FeatureStore
from simfl.engine.plan import RunPlan
from simfl.seeding import derive_seed
from simfl.systems.faults import maybe_crash
from simfl.training import cpu_state, evaluate, pick_device, train_epochs

PARTITION_ID_KEY = "partition-id"


TRACEBACK_BEGIN, TRACEBACK_END = "<<simfl-client-traceback>>", "<<end-simfl-client-traceback>>"


class ClientTaskError(RuntimeError):
    """Carries the client's own traceback between markers through Ray's and Flower's wrapping.

    Flower turns a client exception into an error reply whose reason is Ray's nested repr;
    :func:`client_traceback` recovers the client's own traceback from it on the server.
    """


def client_traceback(reason: str) -> str:
    """The client's traceback inside an error reply's reason (the reason itself if absent)."""
    begin = reason.rfind(TRACEBACK_BEGIN)  # the last copy is the plain format_exc() text
    end = reason.find(TRACEBACK_END, begin)
    if begin < 0 or end < 0:
        return reason
    lines = reason[begin + len(TRACEBACK_BEGIN) : end].strip("\n").splitlines()
    if lines and "ray::" in lines[0]:  # Ray swaps the traceback header for its actor's name
        lines[0] = "Traceback (most recent call last):"
    return "\n".join(lines)


class WorkerState:
    """What one Ray actor builds once per run and reuses for every client it serves."""

    def __init__(self, plan: RunPlan) -> None:
        resources = plan.scenario.resources
        torch.set_num_threads(max(1, int(resources.num_cpus)))
        self.model = plan.build_model().to(pick_device(resources.num_gpus))
        self.store = FeatureStore.open(plan.train_store)
        self.index = ClientIndex(plan.index_dir)

    def tensors(self, rows, labels) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.from_numpy(self.store.read(rows))
        return features, torch.from_numpy(labels.astype("int64"))


class WorkerCache:
    """Holds the WorkerState of the latest run in this process (one at a time, bounded)."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._state: WorkerState | None = None

    def get(self, plan: RunPlan) -> WorkerState:
        if self._state is None or self._key != plan.cache_key():
            self._state = WorkerState(plan)
            self._key = plan.cache_key()
        return self._state


WORKER_CACHE = WorkerCache()


def partition_id(context: Context) -> int:
    return int(context.node_config[PARTITION_ID_KEY])


def _with_traceback(handler: Callable[[Message, Context], Message]) -> Callable[..., Message]:
    def guarded(message: Message, context: Context) -> Message:
        try:
            return handler(message, context)
        except Exception as error:  # report the full traceback to the server
            raise ClientTaskError(
                f"client {context.node_config.get(PARTITION_ID_KEY)}:\n"
                f"{TRACEBACK_BEGIN}\n{traceback.format_exc()}{TRACEBACK_END}"
            ) from error

    return guarded


def _load_global(state: WorkerState, message: Message) -> int:
    arrays: ArrayRecord = message.content["arrays"]
    state.model.load_state_dict(arrays.to_torch_state_dict(), strict=True)
    return int(message.content["config"]["server-round"])


def handle_train(plan: RunPlan, message: Message, context: Context) -> Message:
    cid, state = partition_id(context), WORKER_CACHE.get(plan)
    server_round = _load_global(state, message)
    seed = plan.scenario.scenario.seed
    maybe_crash(plan.scenario.faults, seed, "train", cid, server_round)
    split = state.index.client(cid)
    features, labels = state.tensors(split.train_rows, split.train_labels)
    stats = train_epochs(
        state.model,
        features,
        labels,
        plan.scenario.train,
        derive_seed(seed, "train", cid, server_round),
    )
    metrics = {
        "train_loss": stats.loss,
        "train_accuracy": stats.accuracy,
        "num-examples": stats.num_examples,
    }
    content = RecordDict(
        {"arrays": ArrayRecord(cpu_state(state.model)), "metrics": MetricRecord(metrics)}
    )
    return Message(content=content, reply_to=message)


def handle_evaluate(plan: RunPlan, message: Message, context: Context) -> Message:
    cid, state = partition_id(context), WORKER_CACHE.get(plan)
    server_round = _load_global(state, message)
    maybe_crash(plan.scenario.faults, plan.scenario.scenario.seed, "evaluate", cid, server_round)
    split = state.index.client(cid)
    features, labels = state.tensors(split.test_rows, split.test_labels)
    stats = evaluate(state.model, features, labels, plan.scenario.train.eval_batch_size)
    metrics = {
        "eval_loss": stats.loss,
        "eval_accuracy": stats.accuracy,
        "num-examples": stats.num_examples,
    }
    return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=message)


def handle_query(plan: RunPlan, message: Message, context: Context) -> Message:
    """Tells the server which partition this node serves (node ids are random per run)."""
    info: dict[str, Any] = {PARTITION_ID_KEY: partition_id(context)}
    return Message(content=RecordDict({"info": MetricRecord(info)}), reply_to=message)


def build_client_app(plan: RunPlan) -> ClientApp:
    app = ClientApp()
    app.train()(_with_traceback(lambda m, c: handle_train(plan, m, c)))
    app.evaluate()(_with_traceback(lambda m, c: handle_evaluate(plan, m, c)))
    app.query()(_with_traceback(lambda m, c: handle_query(plan, m, c)))
    return app
