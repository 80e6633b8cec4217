"""q-FedAvg (Li et al. 2020, q-FFL): Flower's ``QFedAvg`` fed with the loss q-FFL defines.

q-FFL weights each client by F_k(w^t)^q, the loss of the *received global model* on the
client's training data. Flower reads that loss from the reply under ``train_loss_key``; simfl's
client reports the mean loss over its local epochs as ``train_loss``, so this adapter asks the
client (train config ``loss-at-global``) to evaluate the global model first and reads that value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flwr.serverapp.strategy import QFedAvg

from simfl.schema.strategy import LOSS_AT_GLOBAL_KEY

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.strategy import QFedAvgConfig


def build_qfedavg(config: QFedAvgConfig, scenario: Scenario | None = None) -> QFedAvg:
    """Flower's QFedAvg on the loss of the global model. Differences from Li et al. (2020):
    Flower adds 1e-10 to F_k in the powers; clients are sampled uniformly (the paper: with
    probability n_k/n), so q = 0 is the unweighted mean; L = 1/lr ignores local momentum."""
    lr = config.client_learning_rate
    if lr is None:
        if scenario is None:
            raise ValueError("qfedavg needs client_learning_rate or the scenario's train.lr")
        lr = scenario.train.lr
    return QFedAvg(
        client_learning_rate=lr,
        q=config.q,
        train_loss_key=LOSS_AT_GLOBAL_KEY,
        **config.sampling_kwargs(),
    )
