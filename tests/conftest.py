"""Session-wide fixtures: the tiny dataset built once, one Ray runtime for every in-process
simulation, and the CLI run in-process (a refusal costs no new interpreter).

Real Flower/Ray simulations still run (marked ``ray``); they share the session's Ray runtime
instead of starting one each, which is what keeps the suite short on a small machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tiny_scenario import tiny_scenario

#: Modules run first, in this order (``--no-loadscope-reorder`` keeps it): the declared-GPU
#: module starts a Ray runtime of its own, so it must run in a worker where Ray is not running
#: yet; the others are the longest (real processes killed and resumed), started early so that
#: the two workers finish together.
RUN_FIRST = (
    "test_gpu_declared.py",
    "test_sweep_concurrency.py",
    "test_interruptions.py",
    "test_resume.py",
    "test_sweep_interruptions.py",
    "test_actor_restarts.py",
    "test_resume_features.py",
    "test_sweep.py",
    "test_quickstart.py",
    "test_bench_gpu_whisper.py",
    "test_end_to_end.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(RUN_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(RUN_FIRST)))  # stable


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def _torch_threads_restored() -> Iterator[None]:
    """Client code built in this process (a WorkerState) sets torch's thread count, as on an
    actor; restore it, so no test's float results depend on which tests ran before it."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _no_inherited_wandb_service() -> Iterator[None]:
    """W&B runs in this process export ``WANDB_SERVICE``; a child ``simfl`` must not join that
    service (a killed child's run id would stay "in use" there), so no later test sees it."""
    import os

    yield
    os.environ.pop("WANDB_SERVICE", None)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory holding the tiny synth-commands dataset and its features."""
    from simfl.pipeline import prepare_scenario_data

    cache = tmp_path_factory.mktemp("tiny-cache")
    prepare_scenario_data(tiny_scenario(cache / "unused-results", cache))
    return cache


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[object]:
    """One Ray runtime (and its actor pools) for every in-process simulation of the session."""
    from simfl.engine.runtime import ray_session

    with ray_session(None, {}) as session:
        yield session


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable:
    """``cli(*args, cwd=...)``: simfl's CLI in this process, with its exit code and output."""
    from simfl.cli import invoke

    def run(*args: str, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        monkeypatch.setenv("COLUMNS", "200")
        code = invoke([str(arg) for arg in args])
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


@pytest.fixture
def frozen_gc() -> Iterator[None]:
    """Flower's Bulyan and QFedAvg call ``gc.collect()`` for every reply they convert; in a
    test process holding torch, pandas and Flower each one walks every object those libraries
    made. Freezing what exists before the test keeps those collections to the test's own
    objects."""
    import gc

    gc.freeze()
    yield
    gc.unfreeze()
