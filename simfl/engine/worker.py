"""What a Ray actor keeps between calls, and one client's training call as a workspace.

Flower pickles the ClientApp into a Ray actor for every message, so anything built there would
be rebuilt per call. Model, feature store and client index are therefore kept in a small
per-process cache (:data:`WORKER_CACHE`): a Ray actor is a long-lived process serving many
clients, and this is the only state it keeps between calls.

A training call is a :class:`ClientWorkspace`: the received model loaded with the client's own
local part, its training rows, and the trainer that will run. Client mods (the engine's
extension point, :mod:`simfl.engine.extensions`) reach it through
:func:`simfl.engine.client_app.client_workspace` before the handler trains: a Byzantine client
changes its labels, DP-SGD replaces the trainer, q-FFL measures the received model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message
from torch import nn

from simfl.data.client_index import ClientIndex
from simfl.data.feature_store import FeatureStore
from simfl.engine.client_state import ClientStateStore
from simfl.engine.heap import refreeze
from simfl.engine.plan import RunPlan
from simfl.flower_compat.grid import message_partition
from simfl.personalization import frozen_names, local_names, split_state
from simfl.seeding import derive_seed
from simfl.training import LoopStats, cpu_state, pick_device, train_epochs


@dataclass
class ClientWorkspace:
    """One client's training call, as the train handler will run it."""

    client: int
    server_round: int
    config: ConfigRecord
    shared: dict[str, torch.Tensor]  # the received global model's shared part
    model: nn.Module  # loaded with ``shared`` and the client's own local part
    features: torch.Tensor
    labels: torch.Tensor
    train_seed: int
    trainable: set[str] | None  # only these parameters train (freeze_shared); None: all
    task: Any  # None: classification (see simfl.tasks)
    trainer: Callable[[ClientWorkspace], LoopStats]
    metrics: dict[str, float] = field(default_factory=dict)  # reported before the training's
    max_steps: int | None = None  # at most this many local steps (partial work); None: all


def sgd_trainer(plan: RunPlan) -> Callable[[ClientWorkspace], LoopStats]:
    """Local epochs of the scenario's optimizer, with the strategy's proximal term if it sends
    one (FedProx's ``proximal-mu``)."""

    def train(work: ClientWorkspace) -> LoopStats:
        return train_epochs(
            work.model,
            work.features,
            work.labels,
            plan.scenario.train,
            work.train_seed,
            proximal_mu=float(work.config.get("proximal-mu", 0.0)),
            anchor=work.shared,
            trainable=work.trainable,
            task=work.task,
            max_steps=work.max_steps,
        )

    return train


class WorkerState:
    """What one Ray actor builds once per run and reuses for every client it serves."""

    def __init__(self, plan: RunPlan) -> None:
        resources = plan.scenario.resources
        torch.set_num_threads(plan.scenario.train.intra_op_threads)  # not resources.num_cpus
        initial = plan.initial_model()
        self.plan = plan
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
        self._workspace: tuple[Message, ClientWorkspace] | None = None
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

    def workspace(self, message: Message) -> ClientWorkspace:
        """The training call for ``message``, built on first use (by a mod or the handler)
        and the same object for every later use with that message."""
        if self._workspace is not None and self._workspace[0] is message:
            return self._workspace[1]
        cid = message_partition(message)
        config = message.content["config"]
        server_round = int(config["server-round"])
        shared = self.global_shared(message)
        self.load(shared, self.own_local(cid))
        split = self.index.client(cid)
        features, labels = self.tensors(split.train_rows, split.train_labels)
        strategy = self.plan.scenario.strategy
        work = ClientWorkspace(
            cid,
            server_round,
            config,
            shared,
            self.model,
            features,
            labels,
            derive_seed(self.plan.scenario.scenario.seed, "train", cid, server_round),
            self.local if strategy.freeze_shared else None,
            self.task,
            sgd_trainer(self.plan),
        )
        self._workspace = (message, work)
        return work

    def release(self) -> None:
        """Forget the last training call (its rows are not kept for the next client)."""
        self._workspace = None

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
