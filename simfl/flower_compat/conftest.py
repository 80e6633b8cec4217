"""Fixtures for the contract tests: real Flower objects, as the simulation sets them up.

Flower's simulation builds an in-memory Grid over an in-memory LinkState and sets a task
identity inside ``run_simulation``; the contract tests build the same objects, so strategies
sample real node ids and messages get real metadata. ``tests/flower_helpers.py`` hands the same
helpers to the tests under ``tests/``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from flwr.common.constant import HEARTBEAT_INTERVAL_INF, NOOP_ACCOUNT_NAME, NOOP_FLWR_AID
from flwr.proto.task_pb2 import Task  # pylint: disable=no-name-in-module
from flwr.server.superlink.linkstate import LinkStateFactory
from flwr.server.superlink.linkstate.in_memory_linkstate import RunRecord
from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME, NOOP_FEDERATION_ID
from flwr.supercore.object_store import ObjectStoreFactory
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity
from flwr.superlink.federation import NoOpFederationManager
from flwr.superlink.grid import InMemoryGrid

RUN_ID, TASK_ID = 4242, 17


@contextmanager
def task_identity() -> Iterator[None]:
    """The task identity Flower's simulation sets before any Message is built."""
    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = TASK_ID, RUN_ID, 0
    try:
        yield
    finally:
        TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved


def in_memory_grid_of(num_nodes: int) -> InMemoryGrid:
    """Flower's InMemoryGrid over a fresh in-memory LinkState with ``num_nodes`` online nodes."""
    factory = LinkStateFactory(
        FLWR_IN_MEMORY_DB_NAME, NoOpFederationManager(), ObjectStoreFactory()
    )
    state = factory.state()
    run = Run.create_empty(run_id=RUN_ID)
    run.primary_task_id, run.federation_id = TASK_ID, NOOP_FEDERATION_ID
    state.run_ids[RUN_ID] = RunRecord(run=run)
    state.task_store[TASK_ID] = Task(task_id=TASK_ID, run_id=RUN_ID)
    for _ in range(num_nodes):
        node = state.create_node(
            NOOP_FLWR_AID,
            NOOP_ACCOUNT_NAME,
            secrets.token_bytes(32),
            heartbeat_interval=HEARTBEAT_INTERVAL_INF,
        )
        state.acknowledge_node_heartbeat(node_id=node, heartbeat_interval=HEARTBEAT_INTERVAL_INF)
    grid = InMemoryGrid(state_factory=factory)
    grid.set_run(run)
    return grid


@pytest.fixture
def flower_task() -> Callable[[], AbstractContextManager[None]]:
    """``with flower_task():`` sets Flower's task identity for the block (messages need it)."""
    return task_identity


@pytest.fixture
def in_memory_grid() -> Callable[[int], InMemoryGrid]:
    """``in_memory_grid(n)``: Flower's InMemoryGrid with ``n`` registered, online nodes."""
    return in_memory_grid_of
