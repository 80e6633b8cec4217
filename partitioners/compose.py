"""Compositions: label shift x quantity skew x acoustic feature shift in one split.

Quantity skew draws a relative size per client; label shift then shares each class among the
clients by Dirichlet(alpha) proportions weighted by those sizes (so a client's expected size
follows the quantity draw and its label mix the Dirichlet); feature shift gives every client its
recording condition. Any one or two of the three may be left out. Flower Datasets has no
composed partitioner.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from partitioners.base import Partitioner
from partitioners.dirichlet import DirichletParams, DirichletPartitioner
from partitioners.feature_shift import AcousticParams, AcousticPartitioner, Condition
from partitioners.iid import IidPartitioner
from partitioners.quantity import QuantityConfig, QuantityPartitioner


class ComposeConfig(BaseModel):
    """``kind = "compose"`` with ``[partition.label]`` (Dirichlet parameters),
    ``[partition.quantity]`` (a quantity-skew kind) and ``[partition.acoustic]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["compose"]
    label: DirichletParams | None = None
    quantity: Annotated[QuantityConfig, Field(discriminator="kind")] | None = None
    acoustic: AcousticParams | None = None

    @model_validator(mode="after")
    def _something(self) -> ComposeConfig:
        if self.label is None and self.quantity is None and self.acoustic is None:
            raise ValueError("compose needs at least one of label, quantity, acoustic")
        return self


class ComposePartitioner(Partitioner):
    def __init__(self, num_partitions: int, config: ComposeConfig, seed: int) -> None:
        super().__init__(num_partitions, seed)
        self.config = config

    @classmethod
    def from_config(cls, config: ComposeConfig, num_partitions: int, seed: int):
        return cls(num_partitions, config, seed)

    def _sample_split(self) -> Partitioner:
        label, quantity, n = self.config.label, self.config.quantity, self.num_partitions
        sizer = QuantityPartitioner(n, quantity, self.seed) if quantity else None
        if label is None:
            return sizer or IidPartitioner(n, self.seed)
        min_size = max(label.min_size, quantity.min_size if quantity else 0)
        weights = sizer.size_weights() if sizer else None
        return DirichletPartitioner(
            n, label.alpha, min_size, self.seed, label.self_balancing, size_weights=weights
        )

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        return self._sample_split().split(labels, metadata)

    def client_conditions(self) -> list[Condition] | None:
        if self.config.acoustic is None:
            return None
        acoustic = AcousticPartitioner(self.num_partitions, self.config.acoustic, self.seed)
        return acoustic.client_conditions()
