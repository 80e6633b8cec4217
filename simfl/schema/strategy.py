"""``[strategy]``: who is sampled, what stays local, and each server rule's own parameters.

One small class per strategy, ``name`` the tag, as Flower has one class per strategy; the
builders over Flower's implementations live in :mod:`simfl.strategies` (named lazily in
:mod:`simfl.registry`). The sampling fields are Flower's own. The partial-sharing fields
(``local_layers``, ``local_batch_norm``, ``freeze_shared``) are simfl's: they decide which
parameters never leave a client, so any server rule can run on the shared part only (FedPer,
FedBN and their combinations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from simfl.schema.base import HASH_NEUTRAL, Section

if TYPE_CHECKING:
    from simfl.config import Scenario

#: q-FFL asks each client for the loss of the received global model under this flag/key.
LOSS_AT_GLOBAL_FLAG = "loss-at-global"
LOSS_AT_GLOBAL_KEY = "loss_at_global"
#: FedNova asks each client for the number of optimizer steps it took, under this flag/key.
LOCAL_STEPS_FLAG = "count-local-steps"
LOCAL_STEPS_KEY = "local_steps"

#: Settings that select a paper's rule where Flower's differs (see simfl/strategies/fidelity.py).
SecondMomentStart = Literal["zero", "tau_squared"]
BiasCorrection = Literal["flower", "none"]
Weighting = Literal["num_examples", "uniform"]


#: A server-side step size, and a momentum or moment-decay coefficient.
ServerLearningRate = Annotated[float, Field(gt=0.0, le=10.0)]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]


class StrategyBase(Section):
    """Sampling as Flower's strategies define it (``fraction_*`` of connected nodes, ``min_*``)."""

    fraction_train: float = Field(default=1.0, gt=0.0, le=1.0)
    fraction_evaluate: float = Field(default=1.0, ge=0.0, le=1.0)
    min_train_nodes: int = Field(default=2, ge=1)
    min_evaluate_nodes: int = Field(default=2, ge=0)
    min_available_nodes: int = Field(default=2, ge=1)
    local_layers: list[str] = Field(default_factory=list)
    local_batch_norm: bool = False
    freeze_shared: bool = False

    @field_validator("local_layers")
    @classmethod
    def _non_empty_patterns(cls, value: list[str]) -> list[str]:
        if any(not pattern for pattern in value):
            raise ValueError("local_layers entries must be non-empty name patterns")
        return value

    @model_validator(mode="after")
    def _min_nodes_consistent(self) -> StrategyBase:
        if self.min_available_nodes < self.min_train_nodes:
            raise ValueError(
                "min_available_nodes must be at least min_train_nodes "
                f"({self.min_available_nodes} < {self.min_train_nodes})"
            )
        if self.freeze_shared and not self.personalized:
            raise ValueError(
                "freeze_shared needs a local part: set local_layers or local_batch_norm"
            )
        return self

    @property
    def personalized(self) -> bool:
        """Whether some parameters stay on the clients."""
        return bool(self.local_layers) or self.local_batch_norm

    def sampling_kwargs(self) -> dict[str, float | int]:
        return {
            "fraction_train": self.fraction_train,
            "fraction_evaluate": self.fraction_evaluate,
            "min_train_nodes": self.min_train_nodes,
            "min_evaluate_nodes": self.min_evaluate_nodes,
            "min_available_nodes": self.min_available_nodes,
        }

    def client_train_config(self) -> dict[str, Any]:
        """Extra entries for the train ConfigRecord (beyond what the Flower strategy adds)."""
        return {}

    def train_nodes(self, cohort: int) -> int:
        """Flower nodes this strategy's training needs for a sampled ``cohort``."""
        return cohort

    def check_scenario(self, scenario: Scenario) -> None:
        """Constraints involving other tables; raise ValueError with a one-line reason."""
        if self.local_batch_norm and not scenario.model.has_batch_norm:
            raise ValueError(
                "strategy.local_batch_norm needs a model with BatchNorm (model.batch_norm = true)"
            )


class FedAvgConfig(StrategyBase):
    """``[strategy] name = "fedavg"``."""

    name: Literal["fedavg"]


class FedAvgMConfig(StrategyBase):
    """``[strategy] name = "fedavgm"``: v <- momentum * v + (w - avg); w <- w - lr * v.

    Momentum defaults to 0.9 (Flower's 0.0 would make this FedAvg).
    """

    name: Literal["fedavgm"]
    server_learning_rate: ServerLearningRate = 1.0
    server_momentum: Beta = 0.9


class FedProxConfig(StrategyBase):
    """``[strategy] name = "fedprox"``; ``proximal_mu = 0`` is FedAvg exactly."""

    name: Literal["fedprox"]
    proximal_mu: float = Field(default=0.01, ge=0.0, le=1000.0)


class QFedAvgConfig(StrategyBase):
    """``[strategy] name = "qfedavg"``; L = 1 / client_learning_rate (default: ``train.lr``)."""

    name: Literal["qfedavg"]
    q: float = Field(default=0.1, ge=0.0, le=100.0)
    client_learning_rate: float | None = Field(default=None, gt=0.0, le=10.0)

    def client_train_config(self) -> dict[str, Any]:
        return {LOSS_AT_GLOBAL_FLAG: True}


class FedBNConfig(StrategyBase):
    """``[strategy] name = "fedbn"``: BatchNorm weights and statistics never leave a client."""

    name: Literal["fedbn"]
    local_batch_norm: bool = True


class FedPerConfig(StrategyBase):
    """``[strategy] name = "fedper"``: the classifier head (``"head"``) stays on each client."""

    name: Literal["fedper"]
    local_layers: list[str] = Field(default_factory=lambda: ["head"], min_length=1)


class FedOptConfigBase(StrategyBase):
    """What Flower's FedOpt family (FedAdagrad, FedAdam, FedYogi) shares.

    ``tau`` is the adaptivity, ``v0`` where the second moment starts (Flower's 0, or the
    paper's tau^2), ``weighting`` how client deltas are averaged (Flower's by num-examples, or
    the paper's unweighted mean).
    """

    tau: float = Field(default=1e-3, gt=0.0, le=1.0)
    v0: Literal["zero", "tau_squared"] = Field(default="zero", json_schema_extra=HASH_NEUTRAL)
    weighting: Weighting = Field(default="num_examples", json_schema_extra=HASH_NEUTRAL)


class FedAdagradConfig(FedOptConfigBase):
    """``[strategy] name = "fedadagrad"``: server learning rate eta, adaptivity tau.

    Flower's FedAdagrad has no momentum (``beta_1 = 0``, the default); the paper's keeps it.
    """

    name: Literal["fedadagrad"]
    eta: ServerLearningRate = 0.1
    beta_1: Beta = Field(default=0.0, json_schema_extra=HASH_NEUTRAL)


class FedAdamConfig(FedOptConfigBase):
    """``[strategy] name = "fedadam"``; ``bias_correction = "none"`` is the paper's step."""

    name: Literal["fedadam"]
    eta: ServerLearningRate = 0.1
    beta_1: Beta = 0.9
    beta_2: Beta = 0.99
    bias_correction: Literal["flower", "none"] = Field(
        default="flower", json_schema_extra=HASH_NEUTRAL
    )


class FedYogiConfig(FedOptConfigBase):
    """``[strategy] name = "fedyogi"``."""

    name: Literal["fedyogi"]
    eta: ServerLearningRate = 0.01
    beta_1: Beta = 0.9
    beta_2: Beta = 0.99


class FedMedianConfig(StrategyBase):
    """``[strategy] name = "fedmedian"``: coordinate-wise median of the client models."""

    name: Literal["fedmedian"]


class FedTrimmedAvgConfig(StrategyBase):
    """``[strategy] name = "fedtrimmedavg"``: per coordinate, trim ``beta`` at each end."""

    name: Literal["fedtrimmedavg"]
    beta: float = Field(default=0.2, ge=0.0, lt=0.5)


class _ByzantineBase(StrategyBase):
    num_malicious_nodes: int = Field(default=0, ge=0)

    def _needs(self, required: int, rule: str) -> None:
        if self.min_train_nodes < required:
            name, f = self.name, self.num_malicious_nodes  # type: ignore[attr-defined]
            raise ValueError(
                f"{name} with num_malicious_nodes = {f} needs min_train_nodes >= {required} "
                f"({rule}), got {self.min_train_nodes}"
            )


class KrumConfig(_ByzantineBase):
    """``[strategy] name = "krum"``: keep the one model closest to its n - f - 2 neighbours."""

    name: Literal["krum"]

    @model_validator(mode="after")
    def _enough_clients(self) -> KrumConfig:
        self._needs(2 * self.num_malicious_nodes + 3, "n > 2f + 2")
        return self


class MultiKrumConfig(_ByzantineBase):
    """``[strategy] name = "multikrum"``: average the ``num_nodes_to_select`` best Krum scores
    (weighted by num-examples as Flower does, or ``weighting = "uniform"`` as the paper does)."""

    name: Literal["multikrum"]
    num_nodes_to_select: int = Field(default=2, ge=1)
    weighting: Literal["num_examples", "uniform"] = Field(
        default="num_examples", json_schema_extra=HASH_NEUTRAL
    )

    @model_validator(mode="after")
    def _enough_clients(self) -> MultiKrumConfig:
        self._needs(2 * self.num_malicious_nodes + 3, "n > 2f + 2")
        if self.num_nodes_to_select > self.min_train_nodes:
            raise ValueError(
                f"num_nodes_to_select ({self.num_nodes_to_select}) exceeds min_train_nodes "
                f"({self.min_train_nodes})"
            )
        return self


class BulyanConfig(_ByzantineBase):
    """``[strategy] name = "bulyan"``: Krum selection, then a trimmed mean around the median.

    ``selection = "recursive_krum"`` is the paper's selection (Flower's: one Krum pass).
    """

    name: Literal["bulyan"]
    selection: Literal["multikrum", "recursive_krum"] = Field(
        default="multikrum", json_schema_extra=HASH_NEUTRAL
    )

    @model_validator(mode="after")
    def _enough_clients(self) -> BulyanConfig:
        self._needs(4 * self.num_malicious_nodes + 3, "n >= 4f + 3")
        return self


class FedBuffConfig(StrategyBase):
    """``[strategy] name = "fedbuff"``: asynchronous buffered aggregation (Nguyen et al. 2022).

    ``concurrency`` (C) clients train at once, each on the model version it downloaded; every
    ``buffer_size`` (K) updates the server applies their staleness-weighted mean,
    s(τ) = (1 + τ)^-staleness_exponent (0.5: the paper's 1/√(1+τ); 0: no discount), with
    ``server_learning_rate`` and ``server_momentum``. K = 1 is FedAsync-style. One "round" is
    one server update. ``weighting``: updates weighted by num-examples (FedAvg's rule, the
    default) or uniformly (the paper's mean).
    """

    name: Literal["fedbuff"]
    concurrency: int = Field(default=10, ge=1)
    buffer_size: int = Field(default=5, ge=1)
    staleness_exponent: float = Field(default=0.5, ge=0.0, le=10.0)
    server_learning_rate: float = Field(default=1.0, gt=0.0, le=100.0)
    server_momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    weighting: Literal["num_examples", "uniform"] = "num_examples"

    def train_nodes(self, cohort: int) -> int:
        """C clients train at once, whatever a synchronous round would sample."""
        return max(cohort, self.concurrency)

    @model_validator(mode="after")
    def _buffer_fits(self) -> FedBuffConfig:
        if self.buffer_size > self.concurrency:
            raise ValueError(
                f"buffer_size K ({self.buffer_size}) exceeds concurrency C "
                f"({self.concurrency}): the buffer could never fill"
            )
        return self

    def check_scenario(self, scenario: Scenario) -> None:
        super().check_scenario(scenario)
        if self.concurrency > scenario.data.num_clients:
            raise ValueError(
                f"strategy.concurrency ({self.concurrency}) exceeds data.num_clients "
                f"({scenario.data.num_clients})"
            )
