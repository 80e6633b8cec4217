"""Memory-aware clients per GPU, and the refusals of GPU input on a machine without CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_sweep import write_sweep

from simfl.config import load_scenario
from simfl.engine.gpu_packing import (
    CUDA_CONTEXT_BYTES,
    GIB,
    clients_per_gpu,
    plan_packing,
)
from simfl.errors import ScenarioError

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")


def test_measured_peak_caps_clients_per_gpu():
    # 2 GiB peak -> 2.4 GiB with the 20% margin + 0.5 GiB CUDA context = 2.9 GiB a client:
    # 5 fit in 16 GiB, so num_gpus 0.1 (10 per GPU) becomes 0.2 (5 per GPU)
    packing = plan_packing(0.1, 2 * GIB, 16 * GIB, "NVIDIA H200")
    assert packing.client_need_bytes == int(2.4 * GIB) + CUDA_CONTEXT_BYTES
    assert (packing.clients_per_gpu_asked, packing.clients_per_gpu) == (10, 5)
    assert packing.num_gpus == 0.2 and packing.capped
    assert packing.line().endswith("capped to 5 clients/GPU (num_gpus 0.2 per client)")


def test_clients_that_fit_are_left_alone():
    packing = plan_packing(0.5, 1 * GIB, 80 * GIB, "NVIDIA H100")
    assert (packing.clients_per_gpu, packing.num_gpus, packing.capped) == (2, 0.5, False)
    assert packing.line().endswith("all fit")


def test_a_capped_fraction_packs_exactly_the_cap():
    # 3 fit: Ray keeps 4 decimals, 0.3333 packs 3 per GPU (0.3334 would pack only 2)
    packing = plan_packing(0.1, 4 * GIB, 16 * GIB, "gpu")
    assert packing.clients_per_gpu == 3 and packing.num_gpus == 0.3333
    assert clients_per_gpu(packing.num_gpus) == 3
    assert [clients_per_gpu(f) for f in (0.1, 0.25, 0.5, 1.0, 0.3)] == [10, 4, 2, 1, 3]


def test_a_client_larger_than_the_budget_is_refused():
    with pytest.raises(ScenarioError) as caught:
        plan_packing(0.25, 20 * GIB, 16 * GIB, "NVIDIA A100")
    assert caught.value.key == "resources.gpu_memory_gib"
    assert "one client needs 24.50 GiB of GPU memory" in str(caught.value)


def test_without_cuda_the_peak_cannot_be_measured_and_the_budget_is_stated():
    packing = plan_packing(0.25, None, 16 * GIB, "no CUDA device in this process")
    assert (packing.clients_per_gpu, packing.num_gpus, packing.client_peak_bytes) == (4, 0.25, None)
    assert packing.line() == (
        "num_gpus 0.25 packs 4 clients/GPU; one client's peak GPU memory cannot be measured "
        "(no CUDA device in this process), budget 16 GiB per GPU"
    )


def test_gpu_memory_budget_is_hash_neutral_and_positive():
    default = load_scenario(QUICKSTART)
    assert load_scenario(QUICKSTART, ["resources.num_gpus=0"]).full_hash() == default.full_hash()
    with pytest.raises(ScenarioError) as caught:
        load_scenario(QUICKSTART, ["resources.gpu_memory_gib=-4"])
    assert str(caught.value) == (
        "quickstart.toml: key 'resources.gpu_memory_gib': Input should be greater than 0 (got -4)"
    )


@no_cuda
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "resources.num_gpus=0.5",
            "key 'resources.num_gpus': 0.5 GPU per client asked, but torch "
            f"{torch.__version__} sees no CUDA device on this machine",
        ),
        ('train.precision="fp8"', "key 'train.precision': Input should be 'fp32', 'bf16' or"),
        ("resources.gpu_memory_gib=-1", "key 'resources.gpu_memory_gib': Input should be"),
    ],
)
def test_bad_gpu_input_is_one_line_exit_2_nothing_written(tmp_path, override, expected, cli):
    path = write_sweep(tmp_path, "")
    run = cli("run", str(path), "--set", override, cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert run.stdout.strip() == ""
    assert line.startswith("error: sweep.toml: ") and expected in line
    assert not (tmp_path / "results").exists()


@no_cuda
def test_a_gpu_sweep_without_cuda_is_refused_before_any_cell(tmp_path, cli):
    path = write_sweep(tmp_path, '\n[sweep]\n"resources.num_gpus" = [0.0, 0.25]\n')
    done = cli("sweep", str(path), cwd=tmp_path)
    assert done.returncode == 2 and "key 'resources.num_gpus'" in done.stderr
    assert "sweep cell resources.num_gpus=0.25" in done.stderr
    assert not (tmp_path / "results").exists()
