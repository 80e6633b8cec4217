"""Flower's MultiKrum and Bulyan with settings that select Blanchard et al.'s and El Mhamdi et
al.'s own rules.

- Multi-Krum (Blanchard et al. 2017) averages the m selected models unweighted; Flower weights
  them by num-examples. ``weighting = "uniform"`` is the paper's mean.
- Bulyan (El Mhamdi et al. 2018) selects its theta = n - 2f models by applying Krum
  recursively: Krum picks one model, which leaves the pool, and the scores are recomputed on
  the rest. Flower's Bulyan takes the theta best scores of one Krum pass over all n (its default
  ``selection_rule``); ``selection = "recursive_krum"`` passes the paper's selection instead.

Flower's behaviour stays the default, so existing runs and their hashes do not change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import MultiKrum

from simfl.flower_compat.strategies import select_multikrum
from simfl.strategies.weighting import Weighting, uniform_aggregate

#: How Bulyan selects theta models: Flower's one Krum pass, or the paper's recursive Krum.
BulyanSelection = Literal["multikrum", "recursive_krum"]


def select_by_recursive_krum(
    contents: list[RecordDict], num_malicious_nodes: int, num_nodes_to_select: int
) -> list[RecordDict]:
    """El Mhamdi et al. (2018), Bulyan's first stage: Krum picks one reply, which leaves the
    pool; repeat on the rest (each Krum uses the pool's size) until enough are selected.

    Same signature as Flower's ``select_multikrum``, so it is Bulyan's ``selection_rule``.
    Krum scores a pool of m with m - f - 2 neighbours; the last picks (m <= f + 2) use one,
    as Flower's Krum does where the paper's count would be zero.
    """
    pool, selected = list(contents), []
    for _ in range(num_nodes_to_select):
        [best] = select_multikrum(pool, num_malicious_nodes, num_nodes_to_select=1)
        pool = [content for content in pool if content is not best]
        selected.append(best)
    return selected


class MultiKrumRule(MultiKrum):
    """Flower's ``MultiKrum``; with ``weighting = "uniform"`` the selected models are averaged
    unweighted, as in Blanchard et al. (2017). Selection and metrics are Flower's."""

    def __init__(self, *, weighting: Weighting = "num_examples", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weighting = weighting

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        if self.weighting == "num_examples":
            return super().aggregate_train(server_round, replies)
        return uniform_aggregate(self, replies, select=self._select)

    def _select(self, contents: list[RecordDict]) -> list[RecordDict]:
        return select_multikrum(
            contents,
            num_malicious_nodes=self.num_malicious_nodes,
            num_nodes_to_select=self.num_nodes_to_select,
        )
