"""FedProx (Li et al. 2020): Flower's ``FedProx`` sends ``proximal-mu``; simfl's client uses it.

Flower's strategy only puts mu into the train ConfigRecord; the client (simfl/engine/client_app.py
with :func:`simfl.training.train_epochs`) adds mu/2 * ||w - w_global||^2 to its local loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flwr.serverapp.strategy import FedProx

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy import FedProxConfig


def build_fedprox(config: FedProxConfig, scenario: Scenario | None = None) -> FedProx:
    """Flower's FedProx. Differences from Li et al. (2020), Algorithm 2: clients are sampled
    uniformly and weighted by n_k (the paper: sampled with probability n_k/n, averaged
    unweighted), and every client runs the same local epochs (no gamma-inexact local work)."""
    return FedProx(**config.sampling_kwargs(), proximal_mu=config.proximal_mu)
