"""Empirical privacy audit: a membership-inference attack on the final global model.

No FL framework ships one. The loss-threshold attack (Yeom et al. 2018) scores each clip by
the global model's loss on it (lower loss: more likely a training member). Members are
training clips of the clients that trained during the run; non-members are clips of the
held-out test speakers, never seen by any client. The attack's AUC (0.5: no better than a
coin) and its true-positive rate at 1% false positives (Carlini et al. 2022's recommended
operating point) are reported. Because non-members are other speakers, the AUC also reflects
the speaker generalisation gap, not memorisation alone; DP runs should push it toward 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from simfl.errors import SimflError
from simfl.seeding import derive_seed

if TYPE_CHECKING:
    from flwr.app import ArrayRecord

    from simfl.engine.plan import RunPlan
    from simfl.privacy.lira import ShadowSplit

#: Scored clips: features and labels.
Examples = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class AttackResult:
    auc: float
    tpr_at_1pct_fpr: float
    members: int
    non_members: int

    def metrics(self) -> dict[str, float]:
        return {
            "mia_auc": self.auc,
            "mia_tpr_at_1pct_fpr": self.tpr_at_1pct_fpr,
            "mia_members": self.members,
            "mia_non_members": self.non_members,
        }


def attack_scores(member_scores: np.ndarray, non_member_scores: np.ndarray) -> AttackResult:
    """AUC (Mann-Whitney U / n1 n2, ties counted half) and TPR at 1% FPR; higher score means
    "member"."""
    from scipy.stats import mannwhitneyu  # here: an audit-free run never needs scipy

    u = mannwhitneyu(member_scores, non_member_scores, alternative="two-sided").statistic
    auc = float(u) / (len(member_scores) * len(non_member_scores))
    threshold = np.quantile(non_member_scores, 0.99, method="higher")
    tpr = float(np.mean(member_scores > threshold))
    return AttackResult(auc, tpr, len(member_scores), len(non_member_scores))


def loss_scores(losses: np.ndarray) -> np.ndarray:
    """Membership scores from per-example losses (lower loss: more likely a member). A model
    wrecked by DP noise can output non-finite logits, and so a NaN loss: that clip gets the
    worst score, so an all-NaN model ties everywhere (AUC 0.5) instead of reporting no AUC."""
    return -np.nan_to_num(losses, nan=np.inf)


@torch.no_grad()
def per_example_loss(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> np.ndarray:
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    device = next(model.parameters()).device
    losses = [
        loss_fn(
            model(features[i : i + batch_size].to(device)), labels[i : i + batch_size].to(device)
        )
        for i in range(0, len(labels), batch_size)
    ]
    return torch.cat(losses).cpu().numpy() if losses else np.zeros(0)


class MembershipAudit:
    """Loss-threshold membership inference against the global model of the final round."""

    def __init__(
        self,
        plan: RunPlan,
        test_rows: np.ndarray,
        test_labels: np.ndarray,
        test_speakers: np.ndarray | None = None,
    ) -> None:
        self.plan = plan
        self.test_rows, self.test_labels = np.asarray(test_rows), np.asarray(test_labels)
        self.test_speakers = None if test_speakers is None else np.asarray(test_speakers)
        if plan.scenario.privacy.audit.attack == "lira" and self.test_speakers is None:
            raise SimflError(
                "privacy.audit.attack = 'lira' needs speaker ids in the test split "
                f"(data.dataset = '{plan.scenario.data.dataset}' has none)"
            )
        self.trained: set[int] = set()

    def saw_training(self, partitions: list[int]) -> None:
        self.trained.update(partitions)

    def state_dict(self) -> dict[str, list[int]]:
        """The clients that trained so far: the members of the final round's attack."""
        return {"trained": sorted(self.trained)}

    def load_state_dict(self, state: dict[str, list[int]]) -> None:
        self.trained = set(state["trained"])

    def _features(self, store, rows: np.ndarray, labels: np.ndarray):
        from simfl.data.feature_store import FeatureStore

        order = np.argsort(rows)  # the store reads sorted rows fastest
        features = FeatureStore.open(store).read(rows[order])
        return torch.from_numpy(features), torch.from_numpy(labels[order].astype(np.int64))

    def _sample(self, rows: np.ndarray, labels: np.ndarray, k: int, purpose: str):
        rng = np.random.default_rng(derive_seed(self.plan.scenario.scenario.seed, purpose))
        keep = np.sort(rng.choice(len(rows), size=k, replace=False))
        return rows[keep], labels[keep]

    def run(self, arrays: ArrayRecord) -> AttackResult:
        from simfl.data.client_index import ClientIndex
        from simfl.training import cpu_state

        audit = self.plan.scenario.privacy.audit
        seed = self.plan.scenario.scenario.seed
        index = ClientIndex(self.plan.index_dir)
        splits = [index.client(cid) for cid in sorted(self.trained)]
        member_rows = np.concatenate([s.train_rows for s in splits] or [np.zeros(0, int)])
        member_labels = np.concatenate([s.train_labels for s in splits] or [np.zeros(0, int)])
        pool_rows, pool_labels, shadow = self.test_rows, self.test_labels, None
        if audit.attack == "lira":
            from simfl.privacy.lira import split_by_speaker

            shadow = split_by_speaker(pool_rows, pool_labels, self.test_speakers, seed)
            pool_rows, pool_labels = shadow.target_rows, shadow.target_labels
        k = min(len(member_rows), len(pool_rows), audit.max_examples)
        if k == 0:
            return AttackResult(float("nan"), float("nan"), 0, 0)
        m_rows, m_labels = self._sample(member_rows, member_labels, k, "mia-members")
        n_rows, n_labels = self._sample(pool_rows, pool_labels, k, "mia-non-members")
        model = self.plan.initial_model()
        model.load_state_dict({**cpu_state(model), **arrays.to_torch_state_dict()}, strict=True)
        members = self._features(self.plan.train_store, m_rows, m_labels)
        non_members = self._features(self.plan.test_store, n_rows, n_labels)
        if shadow is None:
            return self._loss_threshold(model, members, non_members)
        return self._lira(model, members, non_members, shadow)

    def _loss_threshold(
        self, model: nn.Module, members: Examples, non_members: Examples
    ) -> AttackResult:
        batch = self.plan.scenario.train.eval_batch_size
        member_loss = per_example_loss(model, *members, batch)
        non_loss = per_example_loss(model, *non_members, batch)
        return attack_scores(loss_scores(member_loss), loss_scores(non_loss))

    def _lira(
        self, model: nn.Module, members: Examples, non_members: Examples, shadow: ShadowSplit
    ) -> AttackResult:
        from simfl.privacy.lira import lira_scores, logit_confidence, train_shadows

        batch = self.plan.scenario.train.eval_batch_size
        features = torch.cat([members[0], non_members[0]])
        labels = torch.cat([members[1], non_members[1]])
        shadow_data = self._features(self.plan.test_store, shadow.shadow_rows, shadow.shadow_labels)
        shadows = train_shadows(
            self.plan, *shadow_data, self.plan.scenario.privacy.audit.shadow_models
        )
        out = np.stack([logit_confidence(m, features, labels, batch) for m in shadows])
        scores = lira_scores(logit_confidence(model, features, labels, batch), out)
        k = len(members[1])
        return attack_scores(scores[:k], scores[k:])
