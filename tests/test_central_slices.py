"""Central evaluation as slices for the actor pool: the slices' bounds, the exchange that
carries them behind the clients, and the result, which must be the driver's to the bit (on
real torch, data and Flower objects; the end-to-end run is in tests/test_server_callbacks.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from flower_helpers import flower_task
from flwr.app import Array, ArrayRecord
from test_batching import InProcessGrid, _train_messages
from test_client_training import NUM_CLASSES, data, make_plan  # noqa: F401 - fixture

from simfl.engine import client_app
from simfl.engine.central_slices import MAX_SLICES, MESSAGE_TYPE, slice_bounds
from simfl.engine.records import RoundRecord
from simfl.engine.server_app import initial_shared_arrays
from simfl.engine.server_callbacks import CentralEvaluation, RoundState
from simfl.flower_compat.grid import VirtualClientGrid

ROWS = 48


@pytest.fixture(autouse=True)
def _task():
    with flower_task():
        yield


@pytest.mark.parametrize(
    ("rows", "batch", "starts"),
    [(1000, 256, [0, 256, 512, 768]), (48, 5, [0, 10, 20, 25, 30, 35, 40, 45]), (7, 256, [0])],
)
def test_a_slice_is_whole_evaluation_batches_in_order(rows, batch, starts) -> None:
    bounds = slice_bounds(rows, batch)
    assert [b.start for b in bounds] == starts and len(bounds) <= MAX_SLICES
    assert [i for b in bounds for i in b] == list(range(rows))
    assert all(b.start % batch == 0 for b in bounds)


def _perturbed(arrays: ArrayRecord, seed: int) -> ArrayRecord:
    """A global model unlike the initial one (the actor's model must really be loaded)."""
    rng = np.random.default_rng(seed)
    return ArrayRecord(
        {
            key: Array((a.numpy() + rng.normal(0, 0.1, a.shape)).astype(a.numpy().dtype))
            for key, a in arrays.items()
        }
    )


def test_slices_behind_the_clients_give_the_drivers_evaluation_to_the_bit(
    data,  # noqa: F811 - the fixture
    tmp_path,
) -> None:
    plan = make_plan(data, tmp_path, {"name": "fedavg"})
    train = plan.scenario.train.model_copy(update={"eval_batch_size": 5})
    plan = dataclasses.replace(plan, scenario=plan.scenario.model_copy(update={"train": train}))
    rows = np.arange(ROWS)[::-1].copy()  # any order of test-store rows
    labels = np.arange(ROWS) % NUM_CLASSES
    central = CentralEvaluation(plan, rows, labels)
    arrays = _perturbed(initial_shared_arrays(plan), 3)
    state = RoundState(1, arrays, None, RoundRecord(round=1))
    expected = central.after_round(state).metrics

    work = central.remote_work(state)
    assert work is not None and len(work.tasks) == 8  # 10 batches of 5 rows
    grid = InProcessGrid(client_app.build_client_app(plan))
    slots = [11, 12, *range(21, 21 + MAX_SLICES)]
    virtual = VirtualClientGrid(grid, 2, slots, None, side_slots=MAX_SLICES)
    clients, side = virtual.exchange(_train_messages(plan, [1, 0], arrays), work.tasks, timeout=60)
    # The clients' calls first, then the slices, each on a slot of its own.
    assert [m.metadata.message_type for m in grid.sent] == ["train"] * 2 + [MESSAGE_TYPE] * 8
    assert [m.metadata.dst_node_id for m in grid.sent[2:]] == virtual.side_slots
    assert virtual.partition_of == {11: 0, 12: 1} and len(clients) == 2
    assert all(reply is not None and not reply.has_error() for reply in side)
    contents = [reply.content for reply in side]
    remote = work.finish(contents).metrics
    for key in ("central_loss", "central_accuracy"):
        assert remote[key] == expected[key]  # the same bits, added in the same order
    assert expected["central_accuracy"] > 0 and remote["central_eval_seconds"] > 0

    # Slices that did not come back are evaluated on the driver: still the same bits.
    lost = [None if i % 3 == 0 else content for i, content in enumerate(contents)]
    again = work.finish(lost).metrics
    assert again["central_loss"] == expected["central_loss"]
    assert again["central_accuracy"] == expected["central_accuracy"]


def test_transcription_is_not_sliced(data, tmp_path) -> None:  # noqa: F811 - the fixture
    plan = make_plan(data, tmp_path, {"name": "fedavg"})
    central = CentralEvaluation(plan, np.arange(ROWS), np.arange(ROWS) % NUM_CLASSES)
    central.task = object()  # any task scores whole sets (e.g. WER), not batch sums
    state = RoundState(1, initial_shared_arrays(plan), None, RoundRecord(round=1))
    assert central.remote_work(state) is None
