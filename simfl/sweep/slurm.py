"""``simfl sweep --emit-slurm``: an sbatch array script, one shard of the sweep per task.

What simfl adds to a hand-written script: the task's resources come from ``[slurm]`` (what a
node slice offers) or, unstated, from what the cells need; Ray inside the task is started
with exactly those CPUs, GPUs and memory (``simfl sweep --ray-num-cpus ...``), not with what
it would detect on the whole node; and the script says how many clients each cell will run
at once on that task, as ``simfl sweep --status`` does.
"""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from simfl.engine.concurrency import client_concurrency, clients_per_round
from simfl.sweep.grid import Sweep

SHARD_ENV = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")
#: Ray's own default share of memory for its object store; the rest is its "memory" resource.
OBJECT_STORE_FRACTION = 0.3


def shard_from_slurm(environ: dict[str, str] | None = None) -> tuple[int, int] | None:
    """``(i, n)`` for this array task, or None outside a SLURM array job."""
    env = environ if environ is not None else dict(os.environ)
    if not all(name in env for name in SHARD_ENV):
        return None
    task, count = int(env["SLURM_ARRAY_TASK_ID"]), int(env["SLURM_ARRAY_TASK_COUNT"])
    first = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
    return task - first + 1, count


@dataclass(frozen=True)
class TaskResources:
    """One array task's CPUs, GPUs and memory, and whether ``[slurm]`` stated them."""

    cpus: int
    gpus: int
    mem_gib: float | None
    stated: bool

    def ray_options(self) -> list[str]:
        """``simfl sweep`` options that start Ray with exactly this budget."""
        options = ["--ray-num-cpus", str(self.cpus), "--ray-num-gpus", str(self.gpus)]
        if self.mem_gib:
            options += ["--ray-memory-gib", f"{self.mem_gib:g}"]
        return options


def ray_init_for(num_cpus: int | None, num_gpus: int | None, memory_gib: float | None) -> dict:
    """``ray.init`` arguments for a task's budget; memory is split like Ray's own default."""
    init: dict = {}
    if num_cpus is not None:
        init["num_cpus"] = num_cpus
    if num_gpus is not None:
        init["num_gpus"] = num_gpus
    if memory_gib is not None:
        total = int(memory_gib * 2**30)
        init["object_store_memory"] = int(total * OBJECT_STORE_FRACTION)
        init["_memory"] = total - init["object_store_memory"]
    return init


def task_resources(sweep: Sweep) -> TaskResources:
    """What ``[slurm]`` states; unstated, Ray's own budget if the scenario sets one, else
    enough for the most demanding cell's client plus the server."""
    base = sweep.cells[0].scenario
    slurm, init = base.slurm, base.resources.ray_init
    cpus = slurm.cpus_per_task or init.get("num_cpus")
    if cpus is None:
        cpus = max(math.ceil(c.scenario.resources.num_cpus) for c in sweep.cells) + 1
    gpus = slurm.gpus_per_task if slurm.gpus_per_task is not None else init.get("num_gpus")
    if gpus is None:
        gpus = max(math.ceil(c.scenario.resources.num_gpus) for c in sweep.cells)
    stated = slurm.cpus_per_task is not None or slurm.gpus_per_task is not None
    return TaskResources(int(cpus), int(gpus), slurm.mem_gib, stated)


def concurrency_lines(sweep: Sweep, task: TaskResources) -> list[str]:
    """Per distinct ``client_resources``: clients at once on one task, and per round."""
    cluster = {"CPU": float(task.cpus), "GPU": float(task.gpus)}
    lines, seen = [], set()
    by_resources = sorted(
        sweep.cells, key=lambda c: (c.scenario.resources.num_gpus, c.scenario.resources.num_cpus)
    )
    for cell in by_resources:
        resources = cell.scenario.resources
        key = (resources.num_cpus, resources.num_gpus)
        if key in seen:
            continue
        seen.add(key)
        slots = client_concurrency(cluster, resources)
        sampled = clients_per_round(cell.scenario)
        gpu = f", num_gpus={resources.num_gpus:g}" if resources.num_gpus else ""
        if slots < 1:
            lines.append(f"num_cpus={resources.num_cpus:g}{gpu}: no client fits this task")
            continue
        lines.append(
            f"num_cpus={resources.num_cpus:g}{gpu}: {min(slots, sampled)} clients at once "
            f"({slots} actors, {sampled} clients per round)"
        )
    return lines


def concurrency_summary(sweep: Sweep, task: TaskResources) -> list[str]:
    """What the script and ``--status`` say: the task's budget, then one line per resources."""
    mem = f", {task.mem_gib:g} GiB" if task.mem_gib else ""
    gpu_note = " (GPU cells: at most that, capped by the memory probe)" if task.gpus else ""
    head = f"clients per task ({task.cpus} CPUs, {task.gpus} GPUs{mem}){gpu_note}:"
    return [head, *(f"  {line}" for line in concurrency_lines(sweep, task))]


def _sbatch_lines(sweep: Sweep, task: TaskResources, tasks: int, root: Path) -> list[str]:
    slurm = sweep.cells[0].scenario.slurm
    lines = [
        f"#SBATCH --job-name=simfl-{sweep.name}",
        f"#SBATCH --array=0-{tasks - 1}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={task.cpus}",
    ]
    if task.gpus:
        kind = f"{slurm.gpu_type}:" if slurm.gpu_type else ""
        lines.append(f"#SBATCH --gres=gpu:{kind}{task.gpus}")
    if task.mem_gib:
        whole = task.mem_gib == int(task.mem_gib)
        mem = f"{int(task.mem_gib)}G" if whole else f"{math.ceil(task.mem_gib * 1024)}M"
        lines.append(f"#SBATCH --mem={mem}")
    if slurm.time:
        lines.append(f"#SBATCH --time={slurm.time}")
    if slurm.partition:
        lines.append(f"#SBATCH --partition={slurm.partition}")
    if slurm.account:
        lines.append(f"#SBATCH --account={slurm.account}")
    if slurm.requeue:  # a requeued task resumes: completed cells are skipped
        lines += ["#SBATCH --requeue", "#SBATCH --open-mode=append"]
    if slurm.warn_signal_s:  # to the batch shell, which `exec` made simfl itself
        lines.append(f"#SBATCH --signal=B:USR1@{slurm.warn_signal_s}")
    lines += [f"#SBATCH {option}" for option in slurm.sbatch]
    lines.append(f"#SBATCH --output={root}/slurm-%A_%a.out")
    return lines


def slurm_script(
    sweep: Sweep,
    scenario_file: Path,
    overrides: list[str],
    tasks: int,
    root: Path,
    workdir: Path,
) -> str:
    task = task_resources(sweep)
    slurm = sweep.cells[0].scenario.slurm
    simfl = "simfl" if slurm.setup else str(workdir / ".venv" / "bin" / "simfl")
    command = [simfl, "sweep", str(scenario_file.resolve())]
    for item in overrides:
        if not item.startswith("slurm."):  # the task's budget travels as --ray-* options
            command += ["--set", item]
    command += task.ray_options()
    lines = [
        "#!/bin/bash",
        f"# simfl sweep {sweep.sweep_id}: {len(sweep.cells)} cells in {tasks} array tasks.",
        "# Each task runs its shard (from SLURM_ARRAY_TASK_ID / _COUNT) on one Ray runtime with",
        "# exactly the task's resources; rerunning or requeueing skips completed cells.",
        *(f"# {line}" for line in concurrency_summary(sweep, task)),
        "# Merge with: simfl report " + str(root),
        *_sbatch_lines(sweep, task, tasks, root),
        "set -euo pipefail",
        f"cd {shlex.quote(str(workdir))}",
        *slurm.setup,
        "export FLWR_TELEMETRY_ENABLED=0",
        "exec " + shlex.join(command),  # simfl gets SLURM's signals itself
        "",
    ]
    return "\n".join(lines)
