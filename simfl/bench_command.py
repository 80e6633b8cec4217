"""``simfl bench``: run a reference benchmark from ``bench/`` and, with ``--record``, keep what
it measured as a dated record in ``bench/results/`` (:mod:`bench.record`)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from simfl.errors import ScenarioError, SimflError

BENCHMARKS = {
    "w1": "w1_engine_overhead.py",
    "partition": "partition_dirichlet.py",
    "sweep": "sweep_startup.py",
    "whisper-length": "whisper_input_length.py",
    "gpu-whisper": "gpu_whisper_kws.py",
    "scale": "scale.py",
    "cli": "cli_startup.py",
    "secagg": "secagg_overhead.py",
    "he": "he_overhead.py",
    "flower": "flower_w1.py",
    "gpu": "gpu_check.sh",  # the device check: GPU tests and gpu-whisper, under 8 minutes
}

#: Benchmarks whose script writes its figures as JSON to ``--json PATH``; the others' records
#: hold their printed output.
WRITES_JSON = {"w1", "gpu-whisper", "secagg", "he", "flower"}

BENCH_ENV = {
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
}


def _script(workload: str) -> Path:
    if workload not in BENCHMARKS:
        raise ScenarioError(
            f"simfl bench: unknown workload {workload!r}; allowed: {', '.join(BENCHMARKS)}"
        )
    script = Path(__file__).resolve().parents[1] / "bench" / BENCHMARKS[workload]
    if not script.exists():
        raise SimflError(f"{script} not found: benchmarks need a source checkout of simfl")
    return script


def _env() -> dict[str, str]:
    return {**os.environ, **BENCH_ENV}


def _command(script: Path, args: list[str]) -> list[str]:
    if script.suffix == ".sh":  # a shell script is given this interpreter as its python
        return ["bash", str(script), sys.executable, *args]
    return [sys.executable, str(script), *args]


def _run_teed(command: list[str]) -> tuple[int, str]:
    """Run ``command``, showing its output as it comes; its exit code and what it printed."""
    with subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            sys.stdout.write(line)
            lines.append(line)
        return process.wait(), "".join(lines)


def _record_module(bench_dir: Path) -> ModuleType:
    """``bench/record.py`` of this checkout, loaded from its file (bench/ is no package)."""
    spec = importlib.util.spec_from_file_location("simfl_bench_record", bench_dir / "record.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_command(
    ctx: typer.Context,
    workload: Annotated[str, typer.Argument(help=f"One of: {', '.join(BENCHMARKS)}.")],
    record: Annotated[
        bool,
        typer.Option(
            "--record", help="Append a dated record (commit, machine, command) to bench/results/."
        ),
    ] = False,
) -> None:
    """Run a reference benchmark from bench/ (extra arguments are passed on to it).

    The benchmark runs in a fresh process so that GLIBC_TUNABLES (read by glibc at process
    start) applies to it and to every Ray worker it starts.
    """
    script = _script(workload)
    args = list(ctx.args)
    if not record:
        raise typer.Exit(subprocess.run(_command(script, args), env=_env(), check=False).returncode)
    with tempfile.TemporaryDirectory() as scratch:
        figures_file = Path(scratch) / "figures.json"
        extra = ["--json", str(figures_file)] if workload in WRITES_JSON else []
        code, output = _run_teed(_command(script, [*args, *extra]))
        if code != 0:
            raise typer.Exit(code)
        figures = json.loads(figures_file.read_text()) if extra else {"output": output}
    path = _record_module(script.parent).write_record(
        workload, ["simfl", "bench", workload, *args], figures
    )
    print(f"record: {path}")
