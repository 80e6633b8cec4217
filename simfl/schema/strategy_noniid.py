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
    server_learning_rate: ServerLearningRate = 1.0
    weighting: Weighting = "uniform"

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
    server_learning_rate: ServerLearningRate = 1.0

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
    alpha: float = Field(default=0.01, ge=0.0, le=100.0)

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
    lam: float = Field(default=0.1, ge=0.0, le=1000.0)


class PFedMeConfig(StrategyBase):
    """``[strategy] name = "pfedme"`` (T. Dinh et al. 2020): Moreau-envelope personalization.
    ``lam`` λ ties the personal model to the local one, ``inner_steps`` K and ``personal_lr``
    solve the inner problem per batch, ``train.lr`` is η, ``beta`` β mixes the server's model."""

    name: Literal["pfedme"]
    lam: float = Field(default=15.0, gt=0.0, le=1000.0)
    inner_steps: int = Field(default=5, ge=1, le=1000)
    personal_lr: float = Field(default=0.01, gt=0.0, le=10.0)
    beta: float = Field(default=1.0, gt=0.0, le=10.0)

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
    mu: float = Field(default=1.0, ge=0.0, le=100.0)
    temperature: float = Field(default=0.5, gt=0.0, le=100.0)
    projection_dim: int = Field(default=256, ge=1, le=65_536)

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
