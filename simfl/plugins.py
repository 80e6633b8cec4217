"""Features of a run and trackers, named lazily: the extension points' registrations.

A feature (:class:`simfl.engine.extensions.Feature`: privacy, systems heterogeneity, faults,
attacks, a strategy's client steps) is one :class:`Plugin` in :data:`FEATURES`; a tracker
(:class:`simfl.tracking.callbacks.Tracker`: W&B, MLflow) one in :data:`TRACKERS`. The
implementation is named, not imported, and loaded only when a run uses it, as
:mod:`simfl.registry` does for datasets, partitioners, models and strategies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simfl.registry import load


@dataclass(frozen=True)
class Plugin:
    """A feature of a run or a tracker, named lazily."""

    implementation: str
    summary: str

    def load(self) -> Any:
        return load(self.implementation)


FEATURES = {
    "he": Plugin(  # before privacy: central DP's wrapper noises the decrypted mean
        "simfl.privacy.he_feature:HEFeature",
        "CKKS aggregation: the server adds encrypted updates ([privacy.he])",
    ),
    "privacy": Plugin(
        "simfl.privacy.feature:PrivacyFeature",
        "central or local DP with accounting, SecAgg+, membership audits ([privacy])",
    ),
    "systems": Plugin(
        "simfl.systems.feature:SystemsFeature",
        "devices, availability, deadlines, over-selection, simulated clock ([systems])",
    ),
    "partial-work": Plugin(
        "simfl.systems.partial_work:PartialWorkFeature",
        "clients that would miss the deadline train the steps that fit ([systems] partial_work)",
    ),
    "faults": Plugin(
        "simfl.systems.faults:FaultsFeature", "injected client crashes ([systems.faults])"
    ),
    "attacks": Plugin(
        "simfl.systems.attacks:AttackFeature", "Byzantine clients ([systems.attack])"
    ),
    "loss-at-global": Plugin(
        "simfl.strategies.loss_at_global:LossAtGlobalFeature",
        "q-FFL: each client's loss at the received model, before training",
    ),
    "scaffold": Plugin(
        "simfl.strategies.scaffold_client:ScaffoldFeature",
        "SCAFFOLD's clients: corrected steps, control variates as client state",
    ),
    "feddyn": Plugin(
        "simfl.strategies.feddyn_client:FedDynFeature",
        "FedDyn's clients: linear and quadratic penalties, their gradient as client state",
    ),
    "moon": Plugin(
        "simfl.strategies.moon:MoonFeature",
        "MOON: a projection head, and the clients' model-contrastive loss",
    ),
    "ditto": Plugin(
        "simfl.strategies.ditto:DittoFeature",
        "Ditto's clients: a personal model per client, trained after the global update",
    ),
    "pfedme": Plugin(
        "simfl.strategies.pfedme_client:PFedMeFeature",
        "pFedMe's clients: Moreau-envelope steps, the personal model as client state",
    ),
    "local-steps": Plugin(
        "simfl.strategies.local_steps:LocalStepsFeature",
        "FedNova: each client reports the local steps it took",
    ),
    "update-clipping": Plugin(
        "simfl.strategies.update_clipping:UpdateClippingFeature",
        "each client bounds its update's L2 norm (train.max_update_norm)",
    ),
}

#: Sinks of a run's records besides its results directory
#: (:class:`simfl.tracking.callbacks.Tracker`), in the order they receive them.
TRACKERS = {
    "wandb": Plugin(
        "simfl.tracking.wandb_logger:WandbLogger",
        "one W&B run per run, grouped by sweep ([tracking] wandb_mode, --wandb)",
    ),
    "mlflow": Plugin(
        "simfl.tracking.mlflow_tracker:MlflowTracker",
        "one MLflow run per run, nested under its sweep's run ([tracking] mlflow_uri, --mlflow)",
    ),
}
