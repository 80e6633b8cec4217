"""``[privacy]`` as a feature of a run: what it adds at each of the engine's extension points.

- client mods: seeded DP noise and exact clipping, SecAgg+'s client side, each reply naming its
  partition, client-side clipping, local DP (:func:`simfl.privacy.client.train_mods`), and
  DP-SGD as the local trainer;
- the model: BatchNorm replaced by GroupNorm for DP-SGD (Opacus cannot train BatchNorm);
- the strategy wrapped for central DP, with the accountant and the membership audit as one
  server callback (:mod:`simfl.privacy.server`);
- SecAgg+ as the training exchange (:mod:`simfl.privacy.secagg`);
- its section of ``summary.json``.

Only this module is imported to find out whether a run uses privacy; the rest loads when it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import (
    ClientMod,
    EvaluationData,
    ExchangeResult,
    Feature,
    ModStage,
    TrainingExchange,
)

if TYPE_CHECKING:
    from flwr.app import Context, Message
    from flwr.serverapp import Grid
    from flwr.serverapp.strategy import Strategy
    from torch import nn

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan
    from simfl.engine.server_callbacks import ServerCallback


class PrivacyFeature(Feature):
    """Central or local DP, SecAgg+ and the membership audit (``[privacy]``)."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        self.privacy = scenario.privacy
        self.aggregation: Any = None  # the wrapped strategy, once wrap_strategy has run

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        privacy = scenario.privacy
        return privacy.mode != "none" or privacy.audit.attack != "none" or privacy.secagg.enabled

    @property
    def private(self) -> bool:
        """Whether aggregation is wrapped and accounted (DP or an audit, not SecAgg+ alone)."""
        return self.privacy.mode != "none" or self.privacy.audit.attack != "none"

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        from simfl.privacy.client import train_mods

        mods = [ClientMod(ModStage.PROTOCOL, "train", mod) for mod in train_mods(plan)]
        if self.privacy.mode == "local-dpsgd":
            mods.append(ClientMod(ModStage.TRAINER, "train", dpsgd_trainer_mod(plan)))
        return mods

    def adapt_model(self, plan: RunPlan, model: nn.Module) -> nn.Module:
        if self.privacy.mode != "local-dpsgd" or not self.privacy.fix_batch_norm:
            return model
        from simfl.privacy.dpsgd import fix_batch_norm

        return fix_batch_norm(model)

    def wrap_strategy(self, plan: RunPlan, strategy: Strategy) -> Strategy:
        if not self.private:
            return strategy
        from simfl.privacy.central import private_strategy

        self.aggregation = private_strategy(strategy, plan.scenario)
        return self.aggregation

    def server_callbacks(self, plan: RunPlan, evaluation: EvaluationData) -> list[ServerCallback]:
        if self.aggregation is None:
            return []
        from simfl.privacy.server import PrivacyCallback

        return [
            PrivacyCallback(
                plan, self.aggregation, evaluation.rows, evaluation.labels, evaluation.speakers
            )
        ]

    def training_exchange(self, plan: RunPlan) -> TrainingExchange | None:
        if not self.privacy.secagg.enabled:
            return None
        from simfl.privacy.secagg import SecureAggregation

        unit = self.privacy.central and self.privacy.uniform_weights
        timeout = plan.scenario.resources.round_timeout_s
        seed = plan.scenario.scenario.seed
        return SecureExchange(SecureAggregation(self.privacy.secagg, seed, timeout, unit))

    def summary(self) -> dict[str, Any] | None:
        from simfl.privacy.server import privacy_summary

        return privacy_summary(self.scenario)


class SecureExchange(TrainingExchange):
    """SecAgg+ rounds: the replies carry the unmasked mean; bytes are the protocol's."""

    name = "secure aggregation"

    def __init__(self, secure: Any) -> None:
        self.secure = secure

    def exchange(self, server_round: int, messages: list[Message], grid: Grid) -> ExchangeResult:
        ok, failures = self.secure.exchange(server_round, messages, grid)
        last = self.secure.last
        down, up = last["secagg_bytes_down"], last["secagg_bytes_up"]
        return ExchangeResult(ok, failures, down, up, dict(last))


def dpsgd_trainer_mod(plan: RunPlan) -> Any:
    """Train with DP-SGD (Opacus) instead of plain SGD: sets the client workspace's trainer."""

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        from simfl.engine.client_app import client_workspace
        from simfl.privacy.dpsgd import train_epochs_dpsgd

        scenario = plan.scenario
        workspace = client_workspace(plan, message)
        workspace.trainer = lambda work: train_epochs_dpsgd(
            work.model,
            work.features,
            work.labels,
            scenario.train,
            work.train_seed,
            scenario.privacy,
            trainable=work.trainable,
        )
        return call_next(message, context)

    return mod
