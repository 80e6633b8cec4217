"""On a machine with a CUDA GPU (skipped elsewhere): the model sits on the GPU Ray assigned.

Its own module, so that its Ray session is not the declared-GPU one of test_gpu_declared.py.
"""

from __future__ import annotations

import pytest
import torch
from test_gpu_declared import asking_server, reporting_client

from simfl.engine.runtime import ray_session, simulate
from simfl.schema.sections import ResourcesConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_on_a_real_gpu_each_client_model_sits_on_the_gpu_ray_assigned(tmp_path):
    """Two clients at 0.5 GPU on the first real GPU: each actor sees only that GPU, and the
    model simfl places with ``pick_device`` is on it."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    replies: list[dict] = []
    with ray_session(None, {"num_cpus": 2, "num_gpus": 1}) as session:
        ran = simulate(
            asking_server(2, replies),
            reporting_client(barrier, 2, 0.5),
            2,
            ResourcesConfig(num_cpus=1, num_gpus=0.5),
            session=session,
        )
    assert ran == 2 and [r["present"] for r in replies] == [2, 2]
    assert (
        {r["cuda_visible_devices"] for r in replies} == {"0"} == {r["ray_gpu_ids"] for r in replies}
    )
    assert {r["device"] for r in replies} == {"cuda"}
    assert {r["model_device"] for r in replies} == {"cuda:0"}
    assert {r["visible_gpus"] for r in replies} == {1}


def test_a_gpu_run_measures_one_client_and_reports_the_packing(tmp_path):
    """The tiny end-to-end scenario at 0.5 GPU per client: the probe measures a real peak,
    both clients fit, and the run's summary says so."""
    from test_end_to_end import TINY

    from simfl.config import load_scenario
    from simfl.run import RunOptions, run_scenario

    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(results=tmp_path / "results", cache=tmp_path / "cache"))
    overrides = ["resources.num_gpus=0.5", 'train.precision="bf16"', "scenario.rounds=1"]
    outcome = run_scenario(load_scenario(path, overrides), RunOptions(wandb_mode="disabled"))
    packing = outcome.summary["gpu_packing"]
    assert 0 < packing["client_peak_bytes"] < packing["client_need_bytes"]
    assert packing["clients_per_gpu"] == packing["clients_per_gpu_asked"] == 2
    assert packing["measured_on"] == torch.cuda.get_device_name(0)
