"""The range an outcome can take, from its name: what an interval over seeds must stay inside.

Accuracies, AUCs and other proportions live in [0, 1]; losses, error rates, times, bytes,
rounds and ε are never negative; anything else is unbounded. Like
:func:`simfl.report.outcomes.higher_is_better`, the rule reads the column's name, so a metric a
later feature adds is bounded as soon as its name says what it is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

PROPORTION = re.compile(r"accuracy|auc|(^|_)f1($|_)|precision|recall|fraction|share")
NONNEGATIVE = re.compile(
    r"loss|wer|cer|seconds|_s$|^s_per_|bytes|^mb_|_mb$|time|rounds|epsilon|hours|_h$|clients"
    r"|failed|succeeded|sampled|count"
)


@dataclass(frozen=True)
class MetricRange:
    """``[low, high]``, either end possibly infinite."""

    low: float = -math.inf
    high: float = math.inf

    @property
    def is_proportion(self) -> bool:
        return self.low == 0.0 and self.high == 1.0

    @property
    def is_nonnegative(self) -> bool:
        return self.low == 0.0 and math.isinf(self.high)

    def clip(self, value: float) -> float:
        return min(max(value, self.low), self.high)


UNBOUNDED = MetricRange()
PROPORTIONS = MetricRange(0.0, 1.0)
NONNEGATIVES = MetricRange(0.0, math.inf)


def metric_range(outcome: str) -> MetricRange:
    """The range of ``outcome`` (an aggregate prefix such as ``best:`` keeps its column's)."""
    name = outcome.split(":")[-1]
    if PROPORTION.search(name) and not NONNEGATIVE.search(name.replace("accuracy", "")):
        return PROPORTIONS
    if NONNEGATIVE.search(name):
        return NONNEGATIVES
    return UNBOUNDED
