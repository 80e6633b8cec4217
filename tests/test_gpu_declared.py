"""Fractional GPUs proven without a GPU: Ray on this CPU machine is told it has 2 GPUs.

Ray schedules declared GPUs exactly like real ones: it packs ``1 / num_gpus`` client actors on
each and sets every actor's ``CUDA_VISIBLE_DEVICES`` to the GPU it assigned. These tests run
simfl's engine (``ray_session`` + ``simulate``: Flower's simulation on simfl's actor pools) with
a ClientApp that reports what its actor sees, and a barrier that only opens when the expected
number of clients are inside their handlers at the same moment.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from simfl.engine.runtime import ray_session, simulate
from simfl.schema.sections import ResourcesConfig

DECLARED = {"num_cpus": 8, "num_gpus": 2}
BARRIER_TIMEOUT_S = 300.0  # actors start slowly on a busy machine with few cores


def reporting_client(barrier: Path, expected: int, num_gpus: float) -> ClientApp:
    """A client that waits for ``expected`` peers, then says which GPU its actor was given."""
    app = ClientApp()

    @app.query()
    def where(message: Message, context: Context) -> Message:
        import ray

        from simfl.models.kws_cnn import build_kws_cnn
        from simfl.schema.model import KwsCnnParams
        from simfl.training import device_of, pick_device

        model = build_kws_cnn(KwsCnnParams(channels=[4]), 2)  # as WorkerState places it
        (barrier / f"{context.node_config['partition-id']}").touch()
        deadline = time.monotonic() + BARRIER_TIMEOUT_S
        while len(list(barrier.iterdir())) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        info = {
            "present": len(list(barrier.iterdir())),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"),
            "ray_gpu_ids": ",".join(str(i) for i in ray.get_gpu_ids()),
            "pid": os.getpid(),
            "device": str(pick_device(num_gpus)),
            "model_device": str(device_of(model.to(pick_device(num_gpus)))),
            "visible_gpus": torch.cuda.device_count(),
        }
        return Message(RecordDict({"info": ConfigRecord(info)}), reply_to=message)

    return app


def asking_server(num_clients: int, replies: list[dict]) -> ServerApp:
    """Sends one query to every node at once and keeps what each reports."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        while len(nodes := list(grid.get_node_ids())) < num_clients:
            time.sleep(0.05)
        queries = [
            Message(RecordDict(), dst_node_id=node, message_type=MessageType.QUERY)
            for node in nodes
        ]
        for reply in grid.send_and_receive(queries, timeout=300):
            assert not reply.has_error(), reply.error
            replies.append(dict(reply.content["info"]))

    return app


FRESH_PROCESS = "SIMFL_TEST_FRESH_RAY"


@pytest.fixture(scope="module")
def declared_gpus():
    """A Ray runtime that declares 2 GPUs; it needs a process where Ray is not running yet.

    ``conftest.py`` runs this module first, so it runs before the session's runtime
    starts. Where Ray is up already (this module run after others), these tests run in a
    child pytest process instead (``test_declared_gpus_in_a_fresh_process``).
    """
    import ray

    if ray.is_initialized():
        pytest.skip("Ray already runs in this process; covered by the fresh-process test")
    with ray_session(None, DECLARED) as session:
        yield session


def test_declared_gpus_in_a_fresh_process() -> None:
    """Runs this module's GPU tests in a child process whose Ray declares the GPUs."""
    import os
    import subprocess
    import sys

    import ray

    if not ray.is_initialized() or os.environ.get(FRESH_PROCESS):
        pytest.skip("Ray is not running here: the GPU tests below run in this process")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", __file__,
         "-k", "fractional"],
        capture_output=True, text=True, timeout=1200,
        env={**os.environ, FRESH_PROCESS: "1"},
    )  # fmt: skip
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("num_gpus", "concurrency", "per_gpu"),
    [(0.25, 8, {"0": 4, "1": 4}), (0.5, 4, {"0": 2, "1": 2})],
)
def test_fractional_gpus_pack_clients_and_each_actor_sees_its_gpu(
    declared_gpus, tmp_path, num_gpus, concurrency, per_gpu
):
    assert declared_gpus.resources["GPU"] == 2.0 and declared_gpus.resources["CPU"] == 8.0
    resources = ResourcesConfig(num_cpus=1, num_gpus=num_gpus)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    replies: list[dict] = []
    # the 0.5 case reuses the session: its pool can only start once the 0.25 pool released
    # the declared GPUs (simfl keeps one actor pool at a time)
    ran = simulate(
        asking_server(concurrency, replies),
        reporting_client(barrier, concurrency, num_gpus),
        concurrency,
        resources,
        session=declared_gpus,
    )
    assert ran == concurrency
    assert len(replies) == concurrency
    # every client was inside its handler while all the others were: `concurrency` at once,
    # each in its own actor process
    assert [r["present"] for r in replies] == [concurrency] * concurrency
    assert len({r["pid"] for r in replies}) == concurrency
    # Ray assigned each actor one GPU and exported exactly that one to CUDA
    assert all(r["cuda_visible_devices"] == r["ray_gpu_ids"] for r in replies)
    assert Counter(r["cuda_visible_devices"] for r in replies) == per_gpu
    # no CUDA behind the declared GPUs: the model stays on the CPU in the actor (on a machine
    # with a real GPU, tests/test_gpu_real.py checks the placement instead)
    if not torch.cuda.is_available():
        assert {r["device"] for r in replies} == {r["model_device"] for r in replies} == {"cpu"}
