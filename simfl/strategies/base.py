"""Fields every strategy shares: who is sampled, how many must succeed, what stays local.

The sampling fields are Flower's own. The partial-sharing fields (``local_layers``,
``local_batch_norm``, ``freeze_shared``) are simfl's: they decide which parameters never leave
a client, so any server rule (FedAvg, FedAdam, Krum, ...) can run on the shared part only
(FedPer, FedBN and their combinations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from simfl.config import Scenario


class StrategyBase(BaseModel):
    """Sampling as Flower's strategies define it (``fraction_*`` of connected nodes, ``min_*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    def check_scenario(self, scenario: Scenario) -> None:
        """Constraints involving other tables; raise ValueError with a one-line reason."""
        if self.local_batch_norm and not getattr(scenario.model, "batch_norm", False):
            raise ValueError(
                "strategy.local_batch_norm needs a model with BatchNorm (model.batch_norm = true)"
            )
