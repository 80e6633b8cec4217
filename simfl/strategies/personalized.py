"""FedBN (Li et al. 2021) and FedPer (Arivazhagan et al. 2019): FedAvg on the shared part.

Both are FedAvg whose clients keep part of the model (see ``StrategyBase.local_layers`` and
``local_batch_norm``); these names only set the defaults, so a sweep can pick them by name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simfl.strategies.base import StrategyBase


class FedBNConfig(StrategyBase):
    """``[strategy] name = "fedbn"``: BatchNorm weights and statistics never leave a client."""

    name: Literal["fedbn"]
    local_batch_norm: bool = True


class FedPerConfig(StrategyBase):
    """``[strategy] name = "fedper"``: the classifier head (``"head"``) stays on each client."""

    name: Literal["fedper"]
    local_layers: list[str] = Field(default_factory=lambda: ["head"], min_length=1)
