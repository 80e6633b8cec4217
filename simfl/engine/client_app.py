"""The Flower ClientApp: local training and evaluation on one client's rows.

The handlers train and evaluate, nothing else. What a feature does around training (injected
faults, Byzantine clients, DP-SGD, local DP, SecAgg+, q-FFL's loss at the received model) is a
Flower mod that the feature registers (:mod:`simfl.engine.extensions`), composed here in the
declared stage order; a mod reaches the call's :class:`~simfl.engine.worker.ClientWorkspace`
through :func:`client_workspace`.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from simfl.engine.batching import error_record, is_batch, member_contents, pack_contents
from simfl.engine.central_slices import MESSAGE_TYPE, slice_reply, slice_request
from simfl.engine.client_errors import ClientTaskError, wrap_traceback
from simfl.engine.extensions import client_mods
from simfl.engine.plan import RunPlan
from simfl.engine.worker import WORKER_CACHE, ClientWorkspace
from simfl.flower_compat.grid import PARTITION_ID_KEY, message_partition
from simfl.flower_compat.messages import as_received, client_error
from simfl.personalization import split_state
from simfl.training import LoopStats, batch_sums, cpu_state, evaluate


def client_workspace(plan: RunPlan, message: Message) -> ClientWorkspace:
    """The training call ``message`` asks this actor for, as the train handler will run it."""
    return WORKER_CACHE.get(plan).workspace(message)


def traceback_mod(message: Message, context: Context, call_next: Callable[..., Message]) -> Message:
    """Every handler's outermost mod: whatever the features' mods or the handler raise reaches
    the server with the client's full traceback (Flower would send Ray's wrapping of it)."""
    try:
        return call_next(message, context)
    except Exception as error:
        client = message.content.config_records.get("config", {}).get(PARTITION_ID_KEY)
        raise ClientTaskError(wrap_traceback(client, traceback.format_exc())) from error


def handle_train(plan: RunPlan, message: Message, context: Context) -> Message:
    """Local training from the global shared part plus this client's own local part.

    Only the shared part goes back; the local part is saved in the client's state file.
    """
    state = WORKER_CACHE.get(plan)
    work = state.workspace(message)
    state.release()
    stats = work.trainer(work)
    new_shared, new_local = split_state(cpu_state(work.model), state.local, state.frozen)
    if state.local:
        state.client_states.save(work.client, new_local)  # type: ignore[union-attr]
    metrics = work.metrics | {
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
    """The ClientApp for ``plan``: batches of clients unpacked outermost, then each handler
    with the mods the scenario's features add to it."""
    app = ClientApp(mods=[batch_mod])
    app.train(mods=[traceback_mod, *client_mods(plan, "train")])(
        lambda message, context: handle_train(plan, message, context)
    )
    app.evaluate(mods=[traceback_mod, *client_mods(plan, "evaluate")])(
        lambda message, context: handle_evaluate(plan, message, context)
    )
    app.evaluate(MESSAGE_TYPE.split(".")[1], mods=[traceback_mod])(
        lambda message, context: handle_central_slice(plan, message, context)
    )
    return app
