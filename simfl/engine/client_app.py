"""The Flower ClientApp: local training and evaluation on one client's rows.

Flower pickles the ClientApp into a Ray actor for every message, so anything built here would
be rebuilt per call. Model, feature store and client index are therefore kept in a small
per-process cache (:class:`WorkerCache`): a Ray actor is a long-lived process serving many
clients, and this is the only state it keeps between calls.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from simfl.data.client_index import ClientIndex
from simfl.data.feature_store import FeatureStore
from simfl.engine.batching import error_record, is_batch, member_contents, pack_contents
from simfl.engine.central_slices import MESSAGE_TYPE, slice_reply, slice_request
from simfl.engine.client_errors import ClientTaskError, wrap_traceback
from simfl.engine.client_state import ClientStateStore
from simfl.engine.flower_internals import (
    PARTITION_ID_KEY,
    as_received,
    client_error,
    message_partition,
)
from simfl.engine.heap import refreeze
from simfl.engine.plan import RunPlan
from simfl.personalization import frozen_names, local_names, split_state
from simfl.privacy.client import train_mods
from simfl.privacy.dpsgd import train_epochs_dpsgd
from simfl.schema.strategy import LOSS_AT_GLOBAL_FLAG, LOSS_AT_GLOBAL_KEY
from simfl.seeding import derive_seed
from simfl.systems.attacks import client_attack
from simfl.systems.faults import maybe_crash, maybe_fail
from simfl.training import LoopStats, batch_sums, cpu_state, evaluate, pick_device, train_epochs


class WorkerState:
    """What one Ray actor builds once per run and reuses for every client it serves."""

    def __init__(self, plan: RunPlan) -> None:
        resources = plan.scenario.resources
        torch.set_num_threads(max(1, int(resources.num_cpus)))
        initial = plan.initial_model()
        self.model = initial.to(pick_device(resources.num_gpus))
        self.store = FeatureStore.open(plan.train_store)
        self.index = ClientIndex(plan.index_dir)
        self.local = local_names(initial, plan.scenario.strategy)
        self.frozen = frozen_names(initial)  # never travel: identical in every process
        # Copies: ``cpu_state`` of a CPU model shares the parameters' storage, and training
        # would otherwise turn "the initial local part" into the last client's trained one.
        initial_local = split_state(cpu_state(initial), self.local, self.frozen)[1]
        self.initial_local = {name: value.clone() for name, value in initial_local.items()}
        self.client_states = ClientStateStore(plan.state_dir) if plan.state_dir else None
        self.task = plan.task()  # None: classification; else e.g. transcription (WER/CER)
        self._global: tuple[ArrayRecord, dict[str, torch.Tensor]] | None = None
        self._test_path = plan.test_store

    @functools.cached_property
    def test_store(self) -> FeatureStore:
        """Opened on the first central evaluation slice this actor serves."""
        return FeatureStore.open(self._test_path)

    def global_shared(self, message: Message) -> dict[str, torch.Tensor]:
        """The global model's shared part, as tensors. The members of a batch of clients share
        one record (simfl.engine.batching), which is converted once for all of them."""
        arrays: ArrayRecord = message.content["arrays"]
        if self._global is None or self._global[0] is not arrays:
            self._global = (arrays, arrays.to_torch_state_dict())
        return self._global[1]

    def tensors(self, rows, labels) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.from_numpy(self.store.read(rows))
        return features, torch.from_numpy(labels.astype("int64"))

    def own_local(self, cid: int) -> dict[str, torch.Tensor]:
        """The client's local part as it left it, or the initial one before its first round."""
        if not self.local:
            return {}
        if self.client_states is None:
            raise RuntimeError("a strategy with a local part needs RunPlan.state_dir")
        return self.client_states.load(cid) or self.initial_local

    def load(self, shared: dict[str, torch.Tensor], local: dict[str, torch.Tensor]) -> None:
        """Shared and local parts in; the frozen parameters already hold their only values."""
        result = self.model.load_state_dict({**shared, **local}, strict=False)
        missing = set(result.missing_keys) - self.frozen  # BatchNorm fills its own counter
        if result.unexpected_keys or missing:
            raise RuntimeError(
                f"model update does not match the model: missing {sorted(missing)}, "
                f"unexpected {result.unexpected_keys}"
            )


class WorkerCache:
    """Holds the WorkerState of the latest run in this process (one at a time, bounded)."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._state: WorkerState | None = None

    def get(self, plan: RunPlan) -> WorkerState:
        if self._state is None or self._key != plan.key:
            self._state = WorkerState(plan)
            self._key = plan.key
            refreeze()  # this process serves the run from now on (simfl.engine.heap)
        return self._state


WORKER_CACHE = WorkerCache()


def _with_traceback(handler: Callable[[Message, Context], Message]) -> Callable[..., Message]:
    def guarded(message: Message, context: Context) -> Message:
        try:
            return handler(message, context)
        except Exception as error:  # report the full traceback to the server
            client = message.content["config"].get(PARTITION_ID_KEY)
            raise ClientTaskError(wrap_traceback(client, traceback.format_exc())) from error

    return guarded


def handle_train(plan: RunPlan, message: Message, context: Context) -> Message:
    """Local training from the global shared part plus this client's own local part.

    Only the shared part goes back; the local part is saved in the client's state file.
    FedProx's ``proximal-mu`` and q-FFL's ``loss-at-global`` arrive in the train config.
    """
    cid, state = message_partition(message), WORKER_CACHE.get(plan)
    config = message.content["config"]
    server_round = int(config["server-round"])
    seed = plan.scenario.scenario.seed
    maybe_crash(plan.scenario.faults, seed, "train", cid, server_round)
    systems = plan.scenario.systems
    maybe_fail(systems.faults, seed, "before-train", cid, server_round)
    attack = client_attack(systems.attack, seed, plan.scenario.data.num_clients, cid, server_round)
    shared = state.global_shared(message)
    state.load(shared, state.own_local(cid))
    split = state.index.client(cid)
    features, labels = state.tensors(split.train_rows, split.train_labels)
    if attack is not None:  # a Byzantine client (systems.attack)
        labels = attack.labels(labels, plan.num_classes)
    metrics: dict[str, float | int] = {}
    if bool(config.get(LOSS_AT_GLOBAL_FLAG, False)):
        train = plan.scenario.train
        at_global = evaluate(
            state.model, features, labels, train.eval_batch_size, state.task, train.precision
        )
        metrics[LOSS_AT_GLOBAL_KEY] = at_global.loss
    strategy = plan.scenario.strategy
    trainable = state.local if strategy.freeze_shared else None
    train_seed = derive_seed(seed, "train", cid, server_round)
    if plan.scenario.privacy.mode == "local-dpsgd":
        stats = train_epochs_dpsgd(
            state.model, features, labels, plan.scenario.train, train_seed,
            plan.scenario.privacy, trainable=trainable,
        )  # fmt: skip
    else:
        stats = train_epochs(
            state.model,
            features,
            labels,
            plan.scenario.train,
            train_seed,
            proximal_mu=float(config.get("proximal-mu", 0.0)),
            anchor=shared,
            trainable=trainable,
            task=state.task,
        )
    new_shared, new_local = split_state(cpu_state(state.model), state.local, state.frozen)
    if state.local:
        state.client_states.save(cid, new_local)  # type: ignore[union-attr]
    maybe_fail(systems.faults, seed, "after-train", cid, server_round)
    if attack is not None:
        new_shared = attack.update(new_shared, shared)
    metrics |= {
        "train_loss": stats.loss,
        "train_accuracy": stats.accuracy,
        "num-examples": stats.num_examples,
        **stats.extra,  # e.g. DP-SGD's sample rate and steps, for the server's accountant
    }
    content = RecordDict({"arrays": ArrayRecord(new_shared), "metrics": MetricRecord(metrics)})
    return Message(content=content, reply_to=message)


def handle_evaluate(plan: RunPlan, message: Message, context: Context) -> Message:
    """Federated (global model) and personalized (global shared + own local part) evaluation.

    The global model's local part is the initial one, as on the server: no client's local
    part ever leaves it. Without a local part both evaluations are the same model.
    """
    cid, state = message_partition(message), WORKER_CACHE.get(plan)
    server_round = int(message.content["config"]["server-round"])
    maybe_crash(plan.scenario.faults, plan.scenario.scenario.seed, "evaluate", cid, server_round)
    shared = state.global_shared(message)
    split = state.index.client(cid)
    features, labels = state.tensors(split.test_rows, split.test_labels)
    batch_size = plan.scenario.train.eval_batch_size

    def run(local: dict[str, torch.Tensor]) -> LoopStats:
        state.load(shared, local)
        precision = plan.scenario.train.precision
        return evaluate(state.model, features, labels, batch_size, state.task, precision)

    fed = run(state.initial_local)
    pers = run(state.own_local(cid)) if state.local else fed
    metrics = {
        "eval_loss": fed.loss,
        "eval_accuracy": fed.accuracy,
        "pers_loss": pers.loss,
        "pers_accuracy": pers.accuracy,
        "num-examples": fed.num_examples,
    }
    metrics |= {f"eval_{name}": value for name, value in fed.extra.items()}  # e.g. eval_wer
    return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=message)


def handle_central_slice(plan: RunPlan, message: Message, context: Context) -> Message:
    """A slice of central evaluation (simfl.engine.central_slices): the global model, with the
    initial local part as on the server, on whole evaluation batches of the test store; each
    batch's summed loss and correct count go back, for the driver to add up in batch order."""
    start = time.perf_counter()
    state = WORKER_CACHE.get(plan)
    state.load(state.global_shared(message), state.initial_local)
    rows, labels, batch_size = slice_request(message.content)
    features = torch.from_numpy(state.test_store.read(rows))
    sums = batch_sums(state.model, features, torch.from_numpy(labels), batch_size)
    return Message(content=slice_reply(sums, time.perf_counter() - start), reply_to=message)


def batch_mod(message: Message, context: Context, call_next: Callable[..., Message]) -> Message:
    """ClientApp-level mod: a batch of clients (:mod:`simfl.engine.batching`) runs each
    member through the rest of the chain (its own mods, then the handler) as if it had come
    alone; a member that raises fails alone, with the error Flower would have sent for it.
    Any other message passes through."""
    if not message.has_content() or not is_batch(message.content):
        return call_next(message, context)
    replies = []
    for content in member_contents(message.content):
        try:
            reply = call_next(as_received(message, content), context)
        except Exception as error:  # noqa: BLE001 - becomes that member's error reply
            replies.append(client_error(error))
            continue
        failed = reply.has_error()
        replies.append(error_record(reply.error) if failed else reply.content)
    return Message(content=pack_contents(replies), reply_to=message)


def build_client_app(plan: RunPlan) -> ClientApp:
    app = ClientApp(mods=[batch_mod])
    app.train(mods=train_mods(plan))(_with_traceback(lambda m, c: handle_train(plan, m, c)))
    app.evaluate()(_with_traceback(lambda m, c: handle_evaluate(plan, m, c)))
    central = MESSAGE_TYPE.split(".")[1]
    app.evaluate(central)(_with_traceback(lambda m, c: handle_central_slice(plan, m, c)))
    return app
