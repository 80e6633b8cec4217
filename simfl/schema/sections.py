"""The sections every scenario has: ``[scenario]``, ``[train]``, ``[resources]``, ``[faults]``,
``[tracking]``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from simfl.schema.base import HASH_NEUTRAL, Section

#: Numeric precision of local training and evaluation (see :mod:`simfl.precision`).
Precision = Literal["fp32", "bf16", "fp16"]


class ScenarioMeta(Section):
    """``[scenario]``: identity and length of the experiment."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(default=0, ge=0)
    rounds: int = Field(ge=1, le=100_000)
    description: str = ""


class TrainConfig(Section):
    """``[train]``: what each client does locally every round."""

    local_epochs: int = Field(default=1, ge=1, le=1000)
    batch_size: int = Field(default=32, ge=1, le=65_536)
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(default=0.05, gt=0.0, le=10.0)
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    eval_batch_size: int = Field(default=256, ge=1)
    # fp32 runs without autocast; bf16 / fp16 autocast the forward pass, fp16 with a gradient
    # scaler. Hash-neutral: scenarios without it keep their identity.
    precision: Precision = Field(default="fp32", json_schema_extra=HASH_NEUTRAL)
    # Each client scales its update (trained minus received weights) down to this L2 norm
    # before sending it (simfl.strategies.update_clipping); 0: updates travel as trained.
    max_update_norm: float = Field(default=0.0, ge=0.0, json_schema_extra=HASH_NEUTRAL)
    # torch threads each client trains and evaluates with, whatever CPUs [resources] gives it:
    # a sum split over more threads is added in another order, so tying threads to num_cpus
    # would make client_resources change the numbers, not just how many clients run at once.
    # Part of the identity when set (hash-neutral only at its default).
    intra_op_threads: int = Field(default=1, ge=1, le=256, json_schema_extra=HASH_NEUTRAL)


class ResourcesConfig(Section):
    """``[resources]``: Flower's ``client_resources`` and Ray's init arguments."""

    num_cpus: float = Field(default=1.0, gt=0.0)
    num_gpus: float = Field(default=0.0, ge=0.0)
    ray_init: dict[str, Any] = Field(default_factory=dict)
    round_timeout_s: float = Field(default=3600.0, gt=0.0)
    # GPU memory each GPU offers to its clients (GiB); unset: the device's total memory.
    # Before a GPU run one client's peak memory is measured and clients per GPU are capped
    # to fit it (see simfl.engine.gpu_packing). Hash-neutral: it changes no result.
    gpu_memory_gib: float | None = Field(default=None, gt=0.0, json_schema_extra=HASH_NEUTRAL)
    # Clients one actor call trains or evaluates (simfl.engine.batching); 0: as many as give
    # each actor about four calls per exchange. Hash-neutral: every client's result is the
    # same whichever call and actor serve it.
    clients_per_call: int = Field(default=0, ge=0, le=100_000, json_schema_extra=HASH_NEUTRAL)
    # Where central evaluation runs while the next round trains: on a "driver" thread, as
    # slices on the "actors" behind the round's clients, or "off" (in order, as a round ends);
    # "auto" picks by the driver's spare cores (simfl.engine.concurrency.evaluation_overlap).
    # Hash-neutral: every way gives bit-identical results on CPUs.
    evaluation_overlap: Literal["auto", "driver", "actors", "off"] = Field(
        default="auto", json_schema_extra=HASH_NEUTRAL
    )
    # After a stop signal (Ctrl-C, SIGTERM, SLURM's SIGUSR1) the round in progress may finish
    # for this long, then it is abandoned (simfl.engine.interrupt). Hash-neutral.
    stop_grace_s: float = Field(default=10.0, gt=0.0, le=86_400.0, json_schema_extra=HASH_NEUTRAL)
    # Client actors that may die (OOM killer, a signal, a segfault) in one round: each is
    # replaced and its message run again (simfl.engine.actor_restarts). Hash-neutral: a retried
    # client trains exactly as it would have.
    actor_restarts: int = Field(default=3, ge=0, le=1_000, json_schema_extra=HASH_NEUTRAL)


#: The MLflow stores simfl writes to: a tracking server, a SQL database, a local directory.
MLFLOW_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "file")


def check_mlflow_uri(uri: str) -> str:
    """``uri`` if MLflow can log to it (empty: off); else a ValueError saying what is allowed."""
    scheme, separator, rest = uri.partition("://")
    if not uri or not separator and not uri.startswith("file:"):
        return uri  # off, or a local directory (MLflow's file store)
    scheme = scheme.split("+")[0]  # postgresql+psycopg2://
    if uri.startswith("file:") or scheme in MLFLOW_SCHEMES and rest:
        return uri
    raise ValueError(
        f"{uri!r} is not an MLflow store: allowed: a local path, file:, sqlite:///FILE, "
        "http(s)://HOST:PORT or a SQLAlchemy database URI (postgresql://, mysql://, mssql://)"
    )


class TrackingConfig(Section):
    """``[tracking]``: where results go; W&B is offline unless the user asks otherwise."""

    results_dir: str = "results"
    cache_dir: str = ".cache/simfl"
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    wandb_project: str = "simfl"
    wandb_entity: str = ""
    wandb_group: str = ""
    # MLflow, off when empty: a local path, a file: or sqlite:/// store, or http(s)://host:port.
    mlflow_uri: str = ""
    mlflow_experiment: str = ""  # empty: the scenario's name
    # Save a run checkpoint every N rounds (0: never); `simfl run --resume` continues from it.
    checkpoint_every: int = Field(default=1, ge=0, le=100_000, json_schema_extra=HASH_NEUTRAL)

    @field_validator("mlflow_uri")
    @classmethod
    def _known_mlflow_store(cls, uri: str) -> str:
        return check_mlflow_uri(uri)
