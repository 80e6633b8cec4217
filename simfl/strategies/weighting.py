"""How client models are averaged: Flower's num-examples weights, or the unweighted mean.

Flower's ``aggregate_arrayrecords`` weights every reply by its ``num-examples``; several papers
average unweighted instead (Reddi et al. 2021, Algorithm 2: Delta_t = 1/|S| sum of client
deltas; Blanchard et al. 2017, Multi-Krum: 1/m sum of the selected). ``weighting = "uniform"``
selects the unweighted mean; ``"num_examples"`` (Flower's) stays the default.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

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
        valid_replies, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid_replies:
            return None, None
        contents = [message.content for message in valid_replies]
        return uniform_mean(contents), self.train_metrics_aggr_fn(contents, self.weighted_by_key)
