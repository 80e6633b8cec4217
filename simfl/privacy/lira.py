"""Offline LiRA (Carlini et al. 2022, "Membership Inference Attacks From First Principles").

Why: the loss-threshold attack uses one threshold for every clip, so an easy non-member (low
loss because it is easy) looks like a member and a hard member like a non-member; at low false
positive rates it finds almost nothing. LiRA calibrates per clip: it asks how much more
confident the target model is on this clip than models that never trained on it.

The offline variant needs only such OUT models, so no scored clip ever trains one: the
held-out speakers are split in two by speaker (seeded); shadow models are trained centrally,
with the scenario's model, initialisation and optimiser, each on a random half of the first
group's clips, for ``local_epochs x rounds`` epochs (as many passes as a client that trained
every round made); non-members are drawn from the second group only, so a shadow never met a
non-member's speaker either. Per clip x of label y the confidence is Carlini's logit scaling
``phi = log(p_y / (1 - p_y))``; the shadows give its OUT mean; with few shadows the OUT
variance is pooled over clips (Carlini et al.'s "global variance"). The score is
``(phi_target - mean_out) / std_out``, a one-sided Gaussian test: monotone in LiRA's offline
p-value, so its AUC and TPR at a fixed FPR are those of the paper's test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from simfl.seeding import derive_seed

if TYPE_CHECKING:
    from simfl.engine.plan import RunPlan


@torch.no_grad()
def logit_confidence(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> np.ndarray:
    """``log p_y - log(1 - p_y)`` per clip, from the logits without forming p (stable):
    ``z_y - logsumexp_{j != y} z_j``."""
    model.eval()
    out = []
    for i in range(0, len(labels), batch_size):
        logits = model(features[i : i + batch_size]).double()
        y = labels[i : i + batch_size]
        true = logits.gather(1, y[:, None])[:, 0]
        others = logits.scatter(1, y[:, None], float("-inf")).logsumexp(dim=1)
        out.append((true - others).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def lira_scores(target: np.ndarray, shadows: np.ndarray) -> np.ndarray:
    """Offline LiRA scores: ``target[i]`` (the target model's confidence on clip i) against
    ``shadows[k, i]`` (OUT shadow k's), with the OUT variance pooled over clips. A
    non-finite confidence (a model wrecked into NaN outputs) scores worst."""
    mean_out = shadows.mean(axis=0)
    std_out = float(np.sqrt(np.mean(shadows.var(axis=0, ddof=1))))
    scores = (target - mean_out) / max(std_out, 1e-12)
    return np.where(np.isfinite(scores), scores, -np.inf)


@dataclass(frozen=True)
class ShadowSplit:
    """Held-out rows for the shadows' training, and those that may be scored as non-members."""

    shadow_rows: np.ndarray
    shadow_labels: np.ndarray
    target_rows: np.ndarray
    target_labels: np.ndarray


def split_by_speaker(
    rows: np.ndarray, labels: np.ndarray, speakers: np.ndarray, seed: int
) -> ShadowSplit:
    """Half of the held-out speakers (rounded down, at least one) for the shadows."""
    unique = np.unique(speakers)
    if len(unique) < 2:
        raise ValueError("LiRA needs at least 2 held-out speakers (shadows vs non-members)")
    rng = np.random.default_rng(derive_seed(seed, "lira-speakers"))
    shadow_speakers = rng.permutation(unique)[: max(1, len(unique) // 2)]
    to_shadow = np.isin(speakers, shadow_speakers)
    return ShadowSplit(rows[to_shadow], labels[to_shadow], rows[~to_shadow], labels[~to_shadow])


def train_shadows(
    plan: RunPlan, features: torch.Tensor, labels: torch.Tensor, count: int
) -> list[nn.Module]:
    """``count`` OUT models, each on a seeded random half of the shadow clips."""
    from simfl.training import train_epochs

    scenario = plan.scenario
    epochs = scenario.privacy.audit.shadow_epochs or (
        scenario.train.local_epochs * scenario.scenario.rounds
    )
    config = scenario.train.model_copy(update={"local_epochs": epochs})
    shadows = []
    for k in range(count):
        seed = derive_seed(scenario.scenario.seed, "lira-shadow", k)
        half = np.random.default_rng(seed).permutation(len(labels))[: max(1, len(labels) // 2)]
        model = plan.initial_model()
        train_epochs(model, features[half], labels[half], config, seed)
        shadows.append(model)
    return shadows
