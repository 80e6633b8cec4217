"""Fields every strategy shares: who is sampled each round and how many must succeed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrategyBase(BaseModel):
    """Sampling as Flower's strategies define it (``fraction_*`` of connected nodes, ``min_*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fraction_train: float = Field(default=1.0, gt=0.0, le=1.0)
    fraction_evaluate: float = Field(default=1.0, ge=0.0, le=1.0)
    min_train_nodes: int = Field(default=2, ge=1)
    min_evaluate_nodes: int = Field(default=2, ge=0)
    min_available_nodes: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _min_nodes_consistent(self) -> StrategyBase:
        if self.min_available_nodes < self.min_train_nodes:
            raise ValueError(
                "min_available_nodes must be at least min_train_nodes "
                f"({self.min_available_nodes} < {self.min_train_nodes})"
            )
        return self

    def sampling_kwargs(self) -> dict[str, float | int]:
        return {
            "fraction_train": self.fraction_train,
            "fraction_evaluate": self.fraction_evaluate,
            "min_train_nodes": self.min_train_nodes,
            "min_evaluate_nodes": self.min_evaluate_nodes,
            "min_available_nodes": self.min_available_nodes,
        }
