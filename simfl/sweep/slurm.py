"""``simfl sweep --emit-slurm``: an sbatch array script, one shard of the sweep per task."""

from __future__ import annotations

import math
import os
import shlex
from pathlib import Path

from simfl.sweep.grid import Sweep

SHARD_ENV = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")


def shard_from_slurm(environ: dict[str, str] | None = None) -> tuple[int, int] | None:
    """``(i, n)`` for this array task, or None outside a SLURM array job."""
    env = environ if environ is not None else dict(os.environ)
    if not all(name in env for name in SHARD_ENV):
        return None
    task, count = int(env["SLURM_ARRAY_TASK_ID"]), int(env["SLURM_ARRAY_TASK_COUNT"])
    first = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
    return task - first + 1, count


def task_resources(sweep: Sweep) -> tuple[int, int]:
    """CPUs and GPUs per array task: Ray's own budget if the scenario sets one, else enough
    for the most demanding cell's client plus the server."""
    init = sweep.cells[0].scenario.resources.ray_init
    cpus = (
        init.get("num_cpus")
        or max(math.ceil(c.scenario.resources.num_cpus) for c in sweep.cells) + 1
    )
    gpus = init.get("num_gpus")
    if gpus is None:
        gpus = max(math.ceil(c.scenario.resources.num_gpus) for c in sweep.cells)
    return int(cpus), int(gpus)


def slurm_script(
    sweep: Sweep,
    scenario_file: Path,
    overrides: list[str],
    tasks: int,
    root: Path,
    workdir: Path,
) -> str:
    cpus, gpus = task_resources(sweep)
    command = [str(workdir / ".venv" / "bin" / "simfl"), "sweep", str(scenario_file.resolve())]
    for item in overrides:
        command += ["--set", item]
    lines = [
        "#!/bin/bash",
        f"# simfl sweep {sweep.sweep_id}: {len(sweep.cells)} cells in {tasks} array tasks.",
        "# Each task runs its shard (from SLURM_ARRAY_TASK_ID / _COUNT) on one Ray runtime;",
        "# rerunning the array skips completed cells. Merge with: simfl report " + str(root),
        f"#SBATCH --job-name=simfl-{sweep.name}",
        f"#SBATCH --array=0-{tasks - 1}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={cpus}",
        f"#SBATCH --output={root}/slurm-%A_%a.out",
    ]
    if gpus:
        lines.append(f"#SBATCH --gpus-per-task={gpus}")
    lines += [
        "set -euo pipefail",
        f"cd {shlex.quote(str(workdir))}",
        "export FLWR_TELEMETRY_ENABLED=0",
        shlex.join(command),
        "",
    ]
    return "\n".join(lines)
