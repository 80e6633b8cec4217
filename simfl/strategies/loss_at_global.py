"""q-FFL's client step: the loss of the received global model, measured before training.

q-FFL (:mod:`simfl.strategies.qfedavg`) weights each update by the client's loss at the model it
received; its train config carries :data:`~simfl.schema.strategy.LOSS_AT_GLOBAL_FLAG`, and this
feature's client mod (measure stage) answers it with
:data:`~simfl.schema.strategy.LOSS_AT_GLOBAL_KEY` among the reply's metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import ClientMod, Feature, ModStage
from simfl.schema.strategy import LOSS_AT_GLOBAL_FLAG, LOSS_AT_GLOBAL_KEY

if TYPE_CHECKING:
    from flwr.app import Context, Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan


class LossAtGlobalFeature(Feature):
    """Strategies whose train config asks for the loss at the global model."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return LOSS_AT_GLOBAL_FLAG in scenario.strategy.client_train_config()

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        return [ClientMod(ModStage.MEASURE, "train", loss_at_global_mod(plan))]


def loss_at_global_mod(plan: RunPlan) -> Any:
    """Evaluates the client's model as received on its training rows, when asked to."""
    train = plan.scenario.train

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        if bool(message.content["config"].get(LOSS_AT_GLOBAL_FLAG, False)):
            from simfl.engine.client_app import client_workspace
            from simfl.training import evaluate

            work = client_workspace(plan, message)
            stats = evaluate(
                work.model, work.features, work.labels, train.eval_batch_size, work.task,
                train.precision,
            )  # fmt: skip
            work.metrics[LOSS_AT_GLOBAL_KEY] = stats.loss
        return call_next(message, context)

    return mod
