"""``[slurm]``: what one array task of ``simfl sweep --emit-slurm`` asks of the cluster.

Outside the scenario's identity, like ``[tracking]``: it decides where and how fast the cells
run, never their numbers, so stating a node changes no scenario hash, sweep id or cell id.
Every key can also be given on the command line with ``--set slurm.<key>=...``.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from simfl.schema.base import HASH_NEUTRAL, Section

#: SLURM's --time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
#: days-hours:minutes, days-hours:minutes:seconds.
TIME_PATTERN = r"^(\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2})$"


class SlurmConfig(Section):
    """One array task's share of a node; unset keys fall back to what the cells need."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, json_schema_extra=HASH_NEUTRAL
    )

    cpus_per_task: int | None = Field(default=None, ge=1)
    """``--cpus-per-task``, also Ray's CPUs inside the task; unset: ``resources.ray_init``'s
    ``num_cpus``, else the largest ``resources.num_cpus`` rounded up plus one for the server."""
    gpus_per_task: int | None = Field(default=None, ge=0)
    """GPUs per task (``--gres=gpu:<n>``), also Ray's GPUs; unset: ``resources.ray_init``'s
    ``num_gpus``, else the largest ``resources.num_gpus`` rounded up."""
    gpu_type: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    """GPU type for ``--gres=gpu:<type>:<n>`` (e.g. ``a100``); empty: any GPU."""
    mem_gib: float | None = Field(default=None, gt=0.0)
    """``--mem`` in GiB, also Ray's memory (30% of it the object store); unset: SLURM's
    default and Ray's own detection."""
    time: str | None = Field(default=None, pattern=TIME_PATTERN)
    """``--time`` limit in a SLURM format (e.g. ``"2:00:00"``, ``"1-12:00:00"``); unset: the
    partition's default."""
    partition: str = Field(default="", pattern=r"^[A-Za-z0-9_.,-]*$")
    """``--partition`` (a comma-separated list allowed); empty: the cluster's default."""
    account: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    """``--account`` charged for the job; empty: the user's default."""
    requeue: bool = True
    """``--requeue`` a preempted task, its log appended; the rerun skips the cells already
    done and resumes interrupted ones."""
    warn_signal_s: int = Field(default=120, ge=0, le=65_535)
    """Seconds before the time limit SLURM sends SIGUSR1 (``--signal=B:USR1@<s>``): simfl
    checkpoints the round it is in and stops as interrupted; 0: no warning signal."""
    sbatch: list[str] = Field(default_factory=list)
    """Extra ``#SBATCH`` options, one each, e.g. ``"--qos=high"``."""
    setup: list[str] = Field(default_factory=list)
    """Shell lines run before simfl (e.g. ``"module load cuda/12.4"``); with any, the script
    calls ``simfl`` from PATH instead of the work directory's ``.venv``."""

    @field_validator("sbatch")
    @classmethod
    def _sbatch_options(cls, lines: list[str]) -> list[str]:
        for line in lines:
            if not line.startswith("--") or "\n" in line:
                raise ValueError(f"{line!r} is not one sbatch option like '--qos=high'")
        return lines

    @field_validator("setup")
    @classmethod
    def _one_line_each(cls, lines: list[str]) -> list[str]:
        for line in lines:
            if "\n" in line or not line.strip():
                raise ValueError(f"{line!r}: each setup entry is one non-empty shell line")
        return lines
