"""pFedMe's client: its local training replaced by the Moreau-envelope steps of
:func:`simfl.strategies.pfedme.pfedme_steps`, over the scenario's minibatches and epochs
(shuffled by the client's training seed, as ``train_epochs`` shuffles), the personal model θ
kept as client state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import ClientMod, Feature, ModStage
from simfl.strategies.personal_models import personal_evaluation, personal_store
from simfl.strategies.pfedme import pfedme_steps

if TYPE_CHECKING:
    from flwr.app import Context, Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan
    from simfl.engine.worker import ClientWorkspace
    from simfl.training import LoopStats

STATE_NAME = "pfedme"


class PFedMeFeature(Feature):
    """The clients of a pFedMe run."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return scenario.strategy.name == "pfedme"

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        return [
            ClientMod(ModStage.TRAINER, "train", pfedme_mod(plan)),
            personal_evaluation(plan, STATE_NAME),
        ]


class BatchLoss:
    """The data loss of a batch (classification's cross-entropy, or the task's), with the
    loss and accuracy of each batch's first inner step recorded for the client's report."""

    def __init__(self, task: Any) -> None:
        self.task, self.sums, self.correct, self.seen = task, 0.0, 0, 0
        self._last: Any = None

    def __call__(self, model: Any, x: Any, y: Any) -> Any:
        import torch

        if self.task is None:
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            correct = int((logits.argmax(dim=1) == y).sum())
        else:
            loss, correct = self.task.batch_loss(model, x, y)
        if self._last is not x:  # the batch's first inner step
            self._last = x
            self.sums += float(loss.detach()) * len(y)
            self.correct += correct
            self.seen += len(y)
        return loss


def pfedme_trainer(plan: RunPlan) -> Any:
    strategy, train = plan.scenario.strategy, plan.scenario.train

    def trainer(work: ClientWorkspace) -> LoopStats:
        import numpy as np
        import torch

        from simfl.training import LoopStats, device_of, seed_torch

        shuffle = np.random.default_rng(work.train_seed)
        seed_torch(work.train_seed)
        device = device_of(work.model)
        work.model.train()

        def batches() -> Any:
            taken = 0
            for _ in range(train.local_epochs):
                order = torch.from_numpy(shuffle.permutation(len(work.labels)))
                for batch in order.split(train.batch_size):
                    if work.max_steps is not None and taken >= work.max_steps:
                        return  # partial work: the local rounds that fit the deadline
                    taken += 1
                    yield work.features[batch].to(device), work.labels[batch].to(device)

        loss = BatchLoss(work.task)
        personal = pfedme_steps(
            work.model, batches(), loss, strategy.lam, strategy.inner_steps,  # type: ignore[union-attr]
            strategy.personal_lr, train.lr,  # type: ignore[union-attr]
        )  # fmt: skip
        state = work.model.state_dict()
        kept = {n: personal.get(n, state[n]).detach().cpu() for n in work.shared}
        personal_store(plan, STATE_NAME).save(work.client, kept)
        seen = max(loss.seen, 1)
        return LoopStats(loss.sums / seen, loss.correct / seen, len(work.labels))

    return trainer


def pfedme_mod(plan: RunPlan) -> Any:
    def mod(message: Message, context: Context, call_next: Any) -> Message:
        from simfl.engine.client_app import client_workspace

        client_workspace(plan, message).trainer = pfedme_trainer(plan)
        return call_next(message, context)

    return mod
