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
    """Fraction of the available clients sampled to train each round, uniformly without
    replacement: the cohort is max(⌊fraction_train · available⌋, ``min_train_nodes``)."""
    fraction_evaluate: float = Field(default=1.0, ge=0.0, le=1.0)
    """Fraction of the clients sampled each round for federated and personalized evaluation on
    their local test splits (cohort as for ``fraction_train``, with ``min_evaluate_nodes``).
    0 turns client-side evaluation off; above 0 it needs ``data.local_test_fraction > 0``."""
    min_train_nodes: int = Field(default=2, ge=1)
    """Fewest clients sampled to train in a round, whatever ``fraction_train`` gives; a round in
    which fewer clients succeed stops the run. Krum and MultiKrum need at least
    2·``num_malicious_nodes`` + 3, Bulyan at least 4·``num_malicious_nodes`` + 3."""
    min_evaluate_nodes: int = Field(default=2, ge=0)
    """Fewest clients sampled for client-side evaluation in a round, whatever
    ``fraction_evaluate`` gives (unused when ``fraction_evaluate = 0``)."""
    min_available_nodes: int = Field(default=2, ge=1)
    """Flower's minimum of connected clients before a round samples; at least
    ``min_train_nodes`` and at most ``data.num_clients``."""
    local_layers: list[str] = Field(default_factory=list)
    """Name patterns of the parameters that stay on each client (partial sharing): a
    state-dict entry is local when a pattern occurs in its name, and every pattern must match
    some entry of the model. Empty: the whole model is shared. Works with every strategy."""
    local_batch_norm: bool = False
    """Keep every BatchNorm module's weights, biases and running statistics on its client, as
    FedBN does (with any strategy); needs a model with BatchNorm (``model.batch_norm``)."""
    freeze_shared: bool = False
    """Train only the local part (``local_layers``, ``local_batch_norm``) on the clients; the
    shared part stays as received. Needs a local part; scaffold and feddyn refuse it."""

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
    """Selects FedAvg (McMahan et al. 2017): the server takes the mean of the client models
    weighted by their num-examples n_k."""


class FedAvgMConfig(StrategyBase):
    """``[strategy] name = "fedavgm"``: v <- momentum * v + (w - avg); w <- w - lr * v.

    Momentum defaults to 0.9 (Flower's 0.0 would make this FedAvg).
    """

    name: Literal["fedavgm"]
    """Selects FedAvgM (Hsu et al. 2019): FedAvg's n_k-weighted update applied with server
    momentum."""
    server_learning_rate: ServerLearningRate = 1.0
    """Server step size η applied to the momentum buffer (w ← w − η·v); 1 is the paper's step."""
    server_momentum: Beta = 0.9
    """Server momentum coefficient (v ← momentum·v + (w − avg)); 0 makes the rule FedAvg."""


class FedProxConfig(StrategyBase):
    """``[strategy] name = "fedprox"``; ``proximal_mu = 0`` is FedAvg exactly."""

    name: Literal["fedprox"]
    """Selects FedProx (Li et al. 2020, MLSys): FedAvg whose clients add a proximal term to
    their loss."""
    proximal_mu: float = Field(default=0.01, ge=0.0, le=1000.0)
    """FedProx's proximal weight μ: each client's loss adds μ/2·‖w − w_global‖², pulling its
    local model towards the received global one. 0 is FedAvg exactly."""


class QFedAvgConfig(StrategyBase):
    """``[strategy] name = "qfedavg"``; L = 1 / client_learning_rate (default: ``train.lr``)."""

    name: Literal["qfedavg"]
    """Selects q-FedAvg (Li et al. 2020, ICLR, q-FFL): clients weighted by the q-th power of the
    received global model's loss on their training data, for fairness across clients."""
    q: float = Field(default=0.1, ge=0.0, le=100.0)
    """Fairness exponent q: larger values weight clients with a higher loss more. 0 is the
    unweighted mean of the client models (clients are sampled uniformly, not by n_k)."""
    client_learning_rate: float | None = Field(default=None, gt=0.0, le=10.0)
    """Client step size η from which the server estimates the Lipschitz constant L = 1/η.
    None uses ``train.lr`` (ignoring local momentum or Adam)."""

    def client_train_config(self) -> dict[str, Any]:
        return {LOSS_AT_GLOBAL_FLAG: True}


class FedBNConfig(StrategyBase):
    """``[strategy] name = "fedbn"``: BatchNorm weights and statistics never leave a client."""

    name: Literal["fedbn"]
    """Selects FedBN (Li et al. 2021): FedAvg with BatchNorm layers kept on each client; needs a
    model with BatchNorm (``model.batch_norm``)."""
    local_batch_norm: bool = True
    """Keep every BatchNorm module's weights, biases and running statistics on its client;
    true by default for FedBN (false turns it into FedAvg)."""


class FedPerConfig(StrategyBase):
    """``[strategy] name = "fedper"``: the classifier head (``"head"``) stays on each client."""

    name: Literal["fedper"]
    """Selects FedPer (Arivazhagan et al. 2019): FedAvg with personal layers kept on each
    client."""
    local_layers: list[str] = Field(default_factory=lambda: ["head"], min_length=1)
    """Name patterns of the personal layers: a state-dict entry whose name contains a pattern
    stays on its client. At least one pattern; the default keeps the classifier head."""


class FedOptConfigBase(StrategyBase):
    """What Flower's FedOpt family (FedAdagrad, FedAdam, FedYogi) shares.

    ``tau`` is the adaptivity, ``v0`` where the second moment starts (Flower's 0, or the
    paper's tau^2), ``weighting`` how client deltas are averaged (Flower's by num-examples, or
    the paper's unweighted mean).
    """

    tau: float = Field(default=1e-3, gt=0.0, le=1.0)
    """Adaptivity τ: added to √v_t in the server step x ← x + η·m_t / (√v_t + τ); smaller
    values make the step more adaptive per coordinate."""
    v0: Literal["zero", "tau_squared"] = Field(default="zero", json_schema_extra=HASH_NEUTRAL)
    """Where the second moment v starts: ``"zero"`` (Flower's) or ``"tau_squared"`` (τ² for
    every coordinate, the paper's v₋₁ ≥ τ²)."""
    weighting: Weighting = Field(default="num_examples", json_schema_extra=HASH_NEUTRAL)
    """How the client deltas are averaged into Δ_t: ``"num_examples"`` weights them by n_k
    (Flower's), ``"uniform"`` takes the unweighted mean (Reddi et al.'s Algorithm 2)."""


class FedAdagradConfig(FedOptConfigBase):
    """``[strategy] name = "fedadagrad"``: server learning rate eta, adaptivity tau.

    Flower's FedAdagrad has no momentum (``beta_1 = 0``, the default); the paper's keeps it.
    """

    name: Literal["fedadagrad"]
    """Selects FedAdagrad (Reddi et al. 2021): an Adagrad step on the server, v_t summing the
    squared deltas."""
    eta: ServerLearningRate = 0.1
    """Server learning rate η of the adaptive step x ← x + η·m_t / (√v_t + τ)."""
    beta_1: Beta = Field(default=0.0, json_schema_extra=HASH_NEUTRAL)
    """First-moment decay β₁ (m_t = β₁·m_{t−1} + (1 − β₁)·Δ_t). 0, Flower's, is no momentum;
    the paper's FedAdagrad keeps β₁ (0.9 in its experiments)."""


class FedAdamConfig(FedOptConfigBase):
    """``[strategy] name = "fedadam"``; ``bias_correction = "none"`` is the paper's step."""

    name: Literal["fedadam"]
    """Selects FedAdam (Reddi et al. 2021): an Adam step on the server."""
    eta: ServerLearningRate = 0.1
    """Server learning rate η of the adaptive step x ← x + η·m_t / (√v_t + τ)."""
    beta_1: Beta = 0.9
    """First-moment decay β₁ (m_t = β₁·m_{t−1} + (1 − β₁)·Δ_t); 0 is no momentum."""
    beta_2: Beta = 0.99
    """Second-moment decay β₂ (v_t = β₂·v_{t−1} + (1 − β₂)·Δ_t²)."""
    bias_correction: Literal["flower", "none"] = Field(
        default="flower", json_schema_extra=HASH_NEUTRAL
    )
    """``"flower"`` scales η by Adam's bias correction √(1 − β₂^(t+1)) / (1 − β₁^(t+1)) in
    server round t (Flower's rule); ``"none"`` is the paper's step with η as given."""


class FedYogiConfig(FedOptConfigBase):
    """``[strategy] name = "fedyogi"``."""

    name: Literal["fedyogi"]
    """Selects FedYogi (Reddi et al. 2021): a Yogi step on the server, whose second moment
    moves by the sign of v_{t−1} − Δ_t²."""
    eta: ServerLearningRate = 0.01
    """Server learning rate η of the adaptive step x ← x + η·m_t / (√v_t + τ)."""
    beta_1: Beta = 0.9
    """First-moment decay β₁ (m_t = β₁·m_{t−1} + (1 − β₁)·Δ_t); 0 is no momentum."""
    beta_2: Beta = 0.99
    """Second-moment rate β₂ (v_t = v_{t−1} − (1 − β₂)·Δ_t²·sign(v_{t−1} − Δ_t²))."""


class FedMedianConfig(StrategyBase):
    """``[strategy] name = "fedmedian"``: coordinate-wise median of the client models."""

    name: Literal["fedmedian"]
    """Selects FedMedian (Yin et al. 2018): the coordinate-wise median of the client models."""


class FedTrimmedAvgConfig(StrategyBase):
    """``[strategy] name = "fedtrimmedavg"``: per coordinate, trim ``beta`` at each end."""

    name: Literal["fedtrimmedavg"]
    """Selects FedTrimmedAvg (Yin et al. 2018): the coordinate-wise trimmed mean of the client
    models."""
    beta: float = Field(default=0.2, ge=0.0, lt=0.5)
    """Fraction β of the values trimmed at each end, per coordinate: ⌊β·n⌋ of n replies, so
    0.2 trims nothing with fewer than 5 replies. 0 is the plain unweighted mean."""


class _ByzantineBase(StrategyBase):
    num_malicious_nodes: int = Field(default=0, ge=0)
    """Number f of Byzantine clients the rule tolerates per round; it sets how many neighbours
    Krum scores (n − f − 2) and how many clients a round needs (``min_train_nodes``)."""

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
    """Selects Krum (Blanchard et al. 2017): the server keeps the one client model with the
    smallest summed squared distance to its n − f − 2 nearest neighbours."""

    @model_validator(mode="after")
    def _enough_clients(self) -> KrumConfig:
        self._needs(2 * self.num_malicious_nodes + 3, "n > 2f + 2")
        return self


class MultiKrumConfig(_ByzantineBase):
    """``[strategy] name = "multikrum"``: average the ``num_nodes_to_select`` best Krum scores
    (weighted by num-examples as Flower does, or ``weighting = "uniform"`` as the paper does)."""

    name: Literal["multikrum"]
    """Selects Multi-Krum (Blanchard et al. 2017): the server averages the client models with
    the best Krum scores."""
    num_nodes_to_select: int = Field(default=2, ge=1)
    """Number m of client models with the best Krum scores that are averaged; at most
    ``min_train_nodes``."""
    weighting: Literal["num_examples", "uniform"] = Field(
        default="num_examples", json_schema_extra=HASH_NEUTRAL
    )
    """How the m selected models are averaged: ``"num_examples"`` weights them by n_k
    (Flower's), ``"uniform"`` takes the unweighted mean (the paper's)."""

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
    """Selects Bulyan (El Mhamdi et al. 2018): θ = n − 2f models chosen by Krum, then a
    coordinate-wise trimmed mean around their median."""
    selection: Literal["multikrum", "recursive_krum"] = Field(
        default="multikrum", json_schema_extra=HASH_NEUTRAL
    )
    """How the θ models are chosen: ``"multikrum"`` takes the θ best scores of one Krum pass
    (Flower's), ``"recursive_krum"`` applies Krum θ times, each pick leaving the pool and the
    scores recomputed on the rest (the paper's)."""

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
    """Selects FedBuff (Nguyen et al. 2022): asynchronous buffered aggregation on the simulated
    clock; one round of the records is one server update."""
    concurrency: int = Field(default=10, ge=1)
    """Number C of clients training at once: a client that finishes is replaced at once by an
    idle available one. At most ``data.num_clients``, at least ``buffer_size``."""
    buffer_size: int = Field(default=5, ge=1)
    """Number K of client updates the server buffers before it applies them in one server
    update; 1 is FedAsync-style (every update applied as it arrives)."""
    staleness_exponent: float = Field(default=0.5, ge=0.0, le=10.0)
    """Exponent a of the staleness discount s(τ) = (1 + τ)^−a, τ the server updates since the
    client downloaded its model: 0.5 is the paper's 1/√(1 + τ), 0 no discount."""
    server_learning_rate: float = Field(default=1.0, gt=0.0, le=100.0)
    """Server step size η_g applied to the buffered update (w ← w + η_g·m)."""
    server_momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Server momentum β on the buffered update (m ← β·m + Δ); 0 is no momentum."""
    weighting: Literal["num_examples", "uniform"] = "num_examples"
    """How the buffered updates are averaged: ``"num_examples"`` weights them by n_k (FedAvg's
    rule), ``"uniform"`` takes the unweighted mean (the paper's)."""

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
