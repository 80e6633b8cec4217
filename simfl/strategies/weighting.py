"""How client models are averaged: Flower's num-examples weights, or the unweighted mean.

Flower's ``aggregate_arrayrecords`` weights every reply by its ``num-examples``; several papers
average unweighted instead (Reddi et al. 2021, Algorithm 2: Delta_t = 1/|S| sum of client
deltas; Blanchard et al. 2017, Multi-Krum: 1/m sum of the selected). ``weighting = "uniform"``
selects the unweighted mean; ``"num_examples"`` (Flower's) stays the default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from simfl.flower_compat.strategy_state import valid_train_contents
from simfl.schema.strategy import Weighting


def uniform_mean(contents: list[RecordDict]) -> ArrayRecord:
    """The unweighted mean of each reply's (only) ArrayRecord, array by array."""
    records = [next(iter(content.array_records.values())) for content in contents]
    return ArrayRecord(
        {
            key: Array(np.mean([record[key].numpy() for record in records], axis=0))
            for key in records[0]
        }
    )


def uniform_aggregate(
    strategy: FedAvg,
    replies: Iterable[Message],
    select: Callable[[list[RecordDict]], list[RecordDict]] = list,
) -> tuple[ArrayRecord | None, MetricRecord | None]:
    """``aggregate_train`` with the unweighted mean: Flower's reply checks, then ``select``
    (a robust rule's choice of replies; all of them by default), then the mean of what is
    left; metrics stay Flower's num-examples weighted aggregate."""
    contents = valid_train_contents(strategy, replies)
    if not contents:
        return None, None
    chosen = select(contents)
    return uniform_mean(chosen), strategy.train_metrics_aggr_fn(chosen, strategy.weighted_by_key)


class WeightedOrUniformMean(FedAvg):
    """Flower's ``FedAvg`` aggregation, or with ``weighting = "uniform"`` the unweighted mean.

    Placed after a Flower strategy in a subclass's bases (``class X(FedAdam,
    WeightedOrUniformMean)``) it sits between that strategy and ``FedAvg`` in the MRO, so the
    strategy's ``super().aggregate_train`` (its averaging step) runs this one; the rest of the
    strategy's rule is Flower's unchanged. Metrics stay weighted by num-examples.
    """

    weighting: Weighting = "num_examples"

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        if self.weighting == "num_examples":
            return super().aggregate_train(server_round, replies)
        return uniform_aggregate(self, replies)
