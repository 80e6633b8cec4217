"""Compositions: label shift x quantity skew x acoustic feature shift in one split.

Quantity skew draws a relative size per client; label shift then shares each class among the
clients by Dirichlet(alpha) proportions weighted by those sizes (so a client's expected size
follows the quantity draw and its label mix the Dirichlet); feature shift gives every client its
recording condition. Any one or two of the three may be left out. Flower Datasets has no
composed partitioner. Errors name the sub-table's parameter (``label.alpha``,
``quantity.min_size``); the number of partitions is the composition's own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from partitioners.base import Partitioner
from partitioners.dirichlet import DirichletPartitioner
from partitioners.errors import PartitionError
from partitioners.feature_shift import Condition, client_condition
from partitioners.iid import IidPartitioner
from partitioners.params import ComposeParams, IidParams
from partitioners.quantity import QuantityPartitioner


class ComposePartitioner(Partitioner[ComposeParams]):
    """The sample split of ``label`` x ``quantity`` (IID if neither), conditions of ``acoustic``."""

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        try:
            return self._sample_split().split(labels, metadata)
        except PartitionError as error:
            section = self._section_of(error.param)
            raise (error.within(section) if section else error) from error

    def client_conditions(self) -> list[Condition] | None:
        acoustic = self.params.acoustic
        if acoustic is None:
            return None
        return [client_condition(acoustic, self.seed, c) for c in range(self.num_partitions)]

    def _sample_split(self) -> Partitioner:
        label, quantity, n = self.params.label, self.params.quantity, self.num_partitions
        sizer = QuantityPartitioner(n, quantity, self.seed) if quantity else None
        if label is None:
            return sizer or IidPartitioner(n, IidParams(), self.seed)
        min_size = max(label.min_size, quantity.min_size if quantity else 0)
        weights = sizer.size_weights() if sizer else None
        effective = label.model_copy(update={"min_size": min_size})
        return DirichletPartitioner(n, effective, self.seed, size_weights=weights)

    def _section_of(self, param: str) -> str | None:
        """The sub-table a failing parameter of the inner split was taken from."""
        label, quantity = self.params.label, self.params.quantity
        if param == "num_partitions":
            return None
        if label is None:
            return "quantity"
        if param == "min_size" and quantity and quantity.min_size > label.min_size:
            return "quantity"
        return "label"
