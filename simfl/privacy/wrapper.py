"""A strategy wrapper that changes only training's aggregation: PrivateAggregation (DP's
releases and seeded noise) and HEAggregation (the encrypted sum) both wrap the scenario's
Flower strategy and leave its evaluation and summary as they are."""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy


class TrainingWrapper(Strategy):
    """Delegates evaluation and the summary to ``inner``; subclasses define training."""

    def __init__(self, inner: Strategy) -> None:
        super().__init__()
        self.inner = inner

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.inner.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return self.inner.aggregate_evaluate(server_round, replies)

    def summary(self) -> None:
        self.inner.summary()
