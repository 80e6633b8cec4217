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
    """The experiment's name (letters, digits, ``_``, ``.``, ``-``): it starts the names of its
    run directories and sweeps and is the default W&B group and MLflow experiment."""
    seed: int = Field(default=0, ge=0)
    """Master seed: every random choice (model initialisation, partitions, client sampling,
    local shuffling and test splits, noise and faults) derives from it; a sweep's ``seeds`` sets
    it per cell."""
    rounds: int = Field(ge=1, le=100_000)
    """Federated rounds to run; round 0 is the initial model's evaluation (FedBuff: server
    updates)."""
    description: str = ""
    """Free text describing the experiment; it has no effect on the run."""


class TrainConfig(Section):
    """``[train]``: what each client does locally every round."""

    local_epochs: int = Field(default=1, ge=1, le=1000)
    """Passes over its local training split each sampled client makes per round."""
    batch_size: int = Field(default=32, ge=1, le=65_536)
    """Local training minibatch size (with ``privacy.mode = "local-dpsgd"``: the expected size
    of Poisson-sampled batches)."""
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    """Client optimizer, created afresh every round (its state does not persist across
    rounds)."""
    lr: float = Field(default=0.05, gt=0.0, le=10.0)
    """Client learning rate of ``optimizer``."""
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    """SGD momentum (``optimizer = "sgd"`` only); 0: plain SGD."""
    weight_decay: float = Field(default=0.0, ge=0.0)
    """L2 weight decay of the client optimizer (decoupled for ``adamw``); 0: none."""
    eval_batch_size: int = Field(default=256, ge=1)
    """Batch size of every evaluation: central, federated, personalized and the privacy audit;
    it does not change the metrics."""
    precision: Precision = Field(default="fp32", json_schema_extra=HASH_NEUTRAL)
    """Numeric precision of local training and evaluation: ``fp32`` runs without autocast,
    ``bf16`` and ``fp16`` autocast the forward pass (``fp16`` with a gradient scaler); central
    evaluation stays fp32."""
    max_update_norm: float = Field(default=0.0, ge=0.0, json_schema_extra=HASH_NEUTRAL)
    """Each client scales its update (trained minus received weights) down to this L2 norm
    before sending it; 0: updates travel as trained."""
    intra_op_threads: int = Field(default=1, ge=1, le=256, json_schema_extra=HASH_NEUTRAL)
    """Torch threads each client trains and evaluates with, whatever ``resources.num_cpus``
    gives it, so that the number of CPUs never changes the numbers (sums split over more
    threads add in another order)."""


class ResourcesConfig(Section):
    """``[resources]``: Flower's ``client_resources`` and Ray's init arguments."""

    num_cpus: float = Field(default=1.0, gt=0.0)
    """CPUs Ray reserves for each client actor (Flower's ``client_resources``); fractions
    allowed. It decides how many clients run at once, never the results."""
    num_gpus: float = Field(default=0.0, ge=0.0)
    """GPUs Ray reserves for each client actor: 0.25 packs four actors per GPU, capped further by
    ``gpu_memory_gib``; 0 trains on the CPU. A run asking for GPUs where torch sees none is
    refused."""
    ray_init: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for ``ray.init`` (e.g. ``num_cpus``, ``object_store_memory``);
    every cell of a sweep must give the same, since they share one Ray runtime."""
    round_timeout_s: float = Field(default=3600.0, gt=0.0)
    """Seconds the server waits for one exchange's replies before it counts the missing clients
    as failed; with ``[systems]`` also the simulated round's end when ``deadline_s`` is 0."""
    gpu_memory_gib: float | None = Field(default=None, gt=0.0, json_schema_extra=HASH_NEUTRAL)
    """GPU memory (GiB) each GPU offers to its clients; unset: the device's total memory. Before
    a GPU run one client's peak memory is measured and clients per GPU are capped to fit."""
    clients_per_call: int = Field(default=0, ge=0, le=100_000, json_schema_extra=HASH_NEUTRAL)
    """Clients one actor call trains or evaluates; 0: as many as give each actor about four calls
    per exchange. Every client's result is the same whichever call and actor serve it."""
    evaluation_overlap: Literal["auto", "driver", "actors", "off"] = Field(
        default="auto", json_schema_extra=HASH_NEUTRAL
    )
    """Where central evaluation runs while the next round trains: on a ``driver`` thread, as
    slices on the ``actors``, or ``off`` (in order, as a round ends); ``auto`` picks by the
    driver's spare cores. Every choice gives bit-identical results on CPUs."""
    stop_grace_s: float = Field(default=10.0, gt=0.0, le=86_400.0, json_schema_extra=HASH_NEUTRAL)
    """Seconds the round in progress may still run after a stop signal (Ctrl-C, SIGTERM, SLURM's
    SIGUSR1) before it is abandoned; the run stops checkpointed and resumable."""
    actor_restarts: int = Field(default=3, ge=0, le=1_000, json_schema_extra=HASH_NEUTRAL)
    """Client actors that may die (OOM killer, a signal, a segfault) in one round: each is
    replaced and its clients run again with the same result; one more death fails the run."""


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
    """Directory under which each run writes ``<scenario>-<UTC time>-<short hash>/`` and each
    sweep ``sweeps/<sweep-id>/``."""
    cache_dir: str = ".cache/simfl"
    """Directory of the reusable caches: generated and converted datasets, features and
    partitions, keyed by their settings."""
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    """Weights & Biases logging: ``offline`` writes the run under the run directory (``wandb
    sync`` uploads it), ``online`` syncs with the user's login, ``disabled`` turns it off;
    ``--wandb`` overrides it."""
    wandb_project: str = "simfl"
    """W&B project the runs are logged to."""
    wandb_entity: str = ""
    """W&B user or team owning the project; empty: the login's default entity."""
    wandb_group: str = ""
    """W&B group of the run; empty: the scenario's name (a sweep's cells are grouped by sweep
    id)."""
    mlflow_uri: str = ""
    """MLflow store to log to as well: a local path, a ``file:`` or ``sqlite:///`` store,
    ``http(s)://host:port`` or a SQLAlchemy database URI; empty: no MLflow."""
    mlflow_experiment: str = ""
    """MLflow experiment of the run; empty: the scenario's name."""
    checkpoint_every: int = Field(default=1, ge=0, le=100_000, json_schema_extra=HASH_NEUTRAL)
    """Save a run checkpoint every this many rounds, which ``simfl run --resume`` continues
    from; 0: never."""

    @field_validator("mlflow_uri")
    @classmethod
    def _known_mlflow_store(cls, uri: str) -> str:
        return check_mlflow_uri(uri)
