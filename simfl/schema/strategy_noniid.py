"""``[strategy]`` for the Non-IID classics: drift correction (SCAFFOLD, FedNova, FedDyn).

Each strategy's server rule is in :mod:`simfl.strategies` and its client step is a feature
(a trainer-stage client mod) named in :data:`simfl.plugins.FEATURES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from simfl.schema.strategy import (
    LOCAL_STEPS_FLAG,
    ServerLearningRate,
    StrategyBase,
    Weighting,
)

if TYPE_CHECKING:
    from simfl.config import Scenario


class ScaffoldConfig(StrategyBase):
    """``[strategy] name = "scaffold"`` (Karimireddy et al. 2020): control variates correct
    each client's drift; ``server_learning_rate`` is the paper's η_g, ``train.lr`` its η_l.
    Client deltas are averaged unweighted as in the paper (``weighting = "num_examples"``
    weights Δy by n_k as FedAvg does); the server variate always moves by (1/N) Σ Δc_i."""

    name: Literal["scaffold"]
    """Selects SCAFFOLD (Karimireddy et al. 2020, option II): control variates correct each
    client's drift; each client's variate c_i is client state."""
    server_learning_rate: ServerLearningRate = 1.0
    """Global step size η_g: x ← x + η_g·Δy, Δy the mean of the client deltas (``train.lr`` is
    the local step size η_l)."""
    weighting: Weighting = "uniform"
    """How the client deltas Δy are averaged: ``"uniform"`` over the sampled clients (the
    paper's), ``"num_examples"`` weighted by n_k (FedAvg's). The server variate c moves by
    (1/N)·ΣΔc_i, N the number of clients, either way."""

    def check_scenario(self, scenario: Scenario) -> None:
        super().check_scenario(scenario)
        if scenario.privacy.mode != "none" or scenario.privacy.secagg.enabled:
            raise ValueError(
                "scaffold runs without [privacy]: its control variates travel beside the "
                "update, outside DP's clipping and SecAgg+'s masks"
            )
        if self.freeze_shared:
            raise ValueError("scaffold corrects the shared layers' steps: freeze_shared = false")
        if scenario.train.optimizer != "sgd":
            raise ValueError(
                'scaffold estimates gradients from SGD steps: train.optimizer = "sgd" '
                "(with or without train.momentum)"
            )
        if scenario.train.precision == "fp16":
            raise ValueError(
                "scaffold adds its correction to unscaled gradients: train.precision fp32 or bf16"
            )


class FedNovaConfig(StrategyBase):
    """``[strategy] name = "fednova"`` (Wang et al. 2020): each update normalized by its
    client's local work ‖a_i‖₁ (τ_i steps, with ``train.momentum`` ρ), scaled by
    τ_eff = Σ p_i ‖a_i‖₁; ``server_learning_rate`` multiplies the step."""

    name: Literal["fednova"]
    """Selects FedNova (Wang et al. 2020): each client's update is divided by its local work
    ‖a_i‖₁ and the average is rescaled by the effective work τ_eff = Σ p_i·‖a_i‖₁."""
    server_learning_rate: ServerLearningRate = 1.0
    """Server step size η_g multiplying the normalized step; with 1 and equal local work τ_i
    the rule is FedAvg exactly."""

    def client_train_config(self) -> dict[str, Any]:
        return {LOCAL_STEPS_FLAG: True}

    def check_scenario(self, scenario: Scenario) -> None:
        super().check_scenario(scenario)
        if scenario.train.optimizer != "sgd":
            raise ValueError(
                'fednova normalizes by SGD\'s local work: train.optimizer = "sgd" '
                "(with or without train.momentum)"
            )


class FedDynConfig(StrategyBase):
    """``[strategy] name = "feddyn"`` (Acar et al. 2021): each client minimizes its loss with a
    linear term from its previous gradients plus α/2‖θ − θ_server‖²; the server corrects the
    average by its running h. ``alpha = 0`` is FedAvg with unweighted averaging."""

    name: Literal["feddyn"]
    """Selects FedDyn (Acar et al. 2021): dynamic regularization, a linear term per client
    (client state) and the server's running correction h."""
    alpha: float = Field(default=0.01, ge=0.0, le=100.0)
    """Regularization weight α: each client's loss adds its linear term and α/2·‖θ − θ_server‖²;
    the server moves h by −α times the clients' mean drift and subtracts h/α from the average.
    0 is FedAvg with unweighted averaging."""

    def check_scenario(self, scenario: Scenario) -> None:
        super().check_scenario(scenario)
        if self.freeze_shared:
            raise ValueError("feddyn regularizes the shared layers' steps: freeze_shared = false")
        if scenario.train.precision == "fp16":
            raise ValueError(
                "feddyn adds its terms to unscaled gradients: train.precision fp32 or bf16"
            )


class DittoConfig(StrategyBase):
    """``[strategy] name = "ditto"`` (Li et al. 2021): FedAvg for the global model, and per
    client a personal model trained with λ/2‖v − w‖² towards the received global model."""

    name: Literal["ditto"]
    """Selects Ditto (Li et al. 2021, ICML): FedAvg for the global model, plus a personal model
    per client, reported as ``pers_accuracy``."""
    lam: float = Field(default=0.1, ge=0.0, le=1000.0)
    """Weight λ pulling each personal model v towards the received global model w: its loss adds
    λ/2·‖v − w‖². 0 trains v on the client's data alone."""


class PFedMeConfig(StrategyBase):
    """``[strategy] name = "pfedme"`` (T. Dinh et al. 2020): Moreau-envelope personalization.
    ``lam`` λ ties the personal model to the local one, ``inner_steps`` K and ``personal_lr``
    solve the inner problem per batch, ``train.lr`` is η, ``beta`` β mixes the server's model."""

    name: Literal["pfedme"]
    """Selects pFedMe (T. Dinh et al. 2020): a personal model θ per client (client state,
    reported as ``pers_accuracy``) tied to the local model w by a Moreau envelope."""
    lam: float = Field(default=15.0, gt=0.0, le=1000.0)
    """Regularization λ tying the personal model θ to the local model w: the inner problem is
    argmin_θ f(θ; D) + λ/2·‖θ − w‖², and w then moves by η·λ·(w − θ), η = ``train.lr``."""
    inner_steps: int = Field(default=5, ge=1, le=1000)
    """Number K of gradient steps solving the inner problem approximately, per minibatch."""
    personal_lr: float = Field(default=0.01, gt=0.0, le=10.0)
    """Step size of the K inner steps that update the personal model θ."""
    beta: float = Field(default=1.0, gt=0.0, le=10.0)
    """Server mixing weight β: w ← (1 − β)·w + β·(unweighted mean of the replies); 1 takes the
    mean as the new model."""

    def check_scenario(self, scenario: Scenario) -> None:
        super().check_scenario(scenario)
        if scenario.train.precision != "fp32":
            raise ValueError('pfedme\'s inner problem trains in fp32: train.precision = "fp32"')
        if scenario.privacy.mode == "local-dpsgd":
            raise ValueError(
                "pfedme replaces the local training: privacy.mode local-dpsgd cannot wrap it"
            )


class MoonConfig(StrategyBase):
    """``[strategy] name = "moon"`` (Li, He & Song 2021): FedAvg whose clients add μ times the
    model-contrastive loss (temperature τ) on a projection head of ``projection_dim``."""

    name: Literal["moon"]
    """Selects MOON (Li, He & Song 2021): FedAvg whose clients add a model-contrastive loss on a
    projection head; each client's previous local model is client state."""
    mu: float = Field(default=1.0, ge=0.0, le=100.0)
    """Weight μ of the model-contrastive loss added to each client's task loss; 0 is FedAvg on
    the model with a projection head."""
    temperature: float = Field(default=0.5, gt=0.0, le=100.0)
    """Temperature τ dividing the cosine similarities in the model-contrastive loss."""
    projection_dim: int = Field(default=256, ge=1, le=65_536)
    """Width of the representation z: the model's final linear layer is replaced by a two-layer
    projection head to this many features and a new output layer."""

    def check_scenario(self, scenario: Scenario) -> None:
        super().check_scenario(scenario)
        if scenario.model.name == "whisper-asr":
            raise ValueError(
                "moon contrasts a classifier's representations: model kws-cnn or whisper-kws"
            )
        if scenario.privacy.mode == "local-dpsgd":
            raise ValueError(
                "moon's contrastive loss is outside Opacus' per-example clipping: "
                "privacy.mode local-dpsgd cannot run it"
            )
