"""Pieces of Flower's strategies that simfl builds on but Flower does not export.

``flwr.serverapp.strategy`` exports its strategies, not the FedOpt base class they share nor
the Multi-Krum selection function; simfl's paper options and Bulyan's recursive selection are
written against both, so they are imported here, and only here.

Assumptions (contract-tested in ``test_strategies.py``):

- ``fedopt-family-shares-a-fedopt-base``: ``flwr.serverapp.strategy.fedopt.FedOpt`` is the
  base class of ``FedAdam``, ``FedYogi`` and ``FedAdagrad``; it takes their keyword arguments
  (``eta``, ``eta_l``, ``beta_1``, ``beta_2``, ``tau``), keeps them as attributes of those
  names, and creates ``current_arrays``, ``m_t`` and ``v_t`` (``None`` until the first round),
  so a mixin subclassing it sits between a family member and ``FedOpt`` in the MRO.
- ``multikrum-selection-is-a-function``: ``flwr.serverapp.strategy.multikrum.select_multikrum(
  contents, num_malicious_nodes, num_nodes_to_select)`` is the selection ``MultiKrum``
  averages and ``Bulyan``'s default ``selection_rule`` (the signature a replacement rule has).
"""

from __future__ import annotations

from flwr.serverapp.strategy.fedopt import FedOpt
from flwr.serverapp.strategy.multikrum import select_multikrum

__all__ = ["FedOpt", "select_multikrum"]
