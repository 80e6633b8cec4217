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

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, json_schema_extra=HASH_NEUTRAL)

    cpus_per_task: int | None = Field(default=None, ge=1)
    gpus_per_task: int | None = Field(default=None, ge=0)
    gpu_type: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")  # --gres=gpu:<type>:<n>
    mem_gib: float | None = Field(default=None, gt=0.0)
    time: str | None = Field(default=None, pattern=TIME_PATTERN)  # e.g. "2:00:00", "1-12:00:00"
    partition: str = Field(default="", pattern=r"^[A-Za-z0-9_.,-]*$")
    account: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    # Requeue a preempted task; its rerun skips the cells already done (sweep resume).
    requeue: bool = True
    # Seconds before the time limit SLURM sends SIGUSR1 (--signal=B:USR1@<s>): simfl checkpoints
    # the round it is in and stops as interrupted, so a requeued task goes on from there.
    # 0: no warning signal.
    warn_signal_s: int = Field(default=120, ge=0, le=65_535)
    sbatch: list[str] = Field(default_factory=list)  # extra options, e.g. "--qos=high"
    # Shell lines run before simfl, e.g. "module load cuda/12.4", "source ~/venv/bin/activate";
    # with any, the script calls `simfl` from PATH instead of the work directory's .venv.
    setup: list[str] = Field(default_factory=list)

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
