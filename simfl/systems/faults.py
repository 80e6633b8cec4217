"""Fault injection (``[systems.faults]``): clients that crash, to test what a strategy (and
simfl) does about it. As a feature it adds one client mod per handler at the faults stage:
a crash before training (or evaluation), and one after training."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import ClientMod, Feature, ModStage
from simfl.schema.systems import SystemFaultsConfig
from simfl.seeding import rng_for

if TYPE_CHECKING:
    from flwr.app import Context, Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan


class InjectedClientFault(RuntimeError):
    """Raised inside a ClientApp on purpose; it travels as an ordinary client failure."""


def maybe_crash(probability: float, seed: int, phase: str, client: int, server_round: int) -> None:
    """``client_crash_probability``: crash in ``phase`` ("train" or "evaluate"), seeded per
    client and round."""
    if probability <= 0.0:
        return
    if rng_for(seed, f"fault-{phase}", client, server_round).random() < probability:
        raise InjectedClientFault(
            f"injected {phase} crash in client {client}, round {server_round} "
            f"(systems.faults.client_crash_probability={probability})"
        )


def maybe_fail(
    config: SystemFaultsConfig, seed: int, point: str, client: int, server_round: int
) -> None:
    """``[systems.faults]``: crash at ``point`` ("before-train" or "after-train"), seeded per
    client and round; the server sees an ordinary client failure (counted as a crash)."""
    probability = {
        "before-train": config.crash_before_train,
        "after-train": config.crash_after_train,
    }[point]
    if probability <= 0.0:
        return
    if rng_for(seed, f"fault-{point}", client, server_round).random() < probability:
        raise InjectedClientFault(
            f"injected crash {point.replace('-', ' ')} in client {client}, round {server_round} "
            f"(systems.faults)"
        )


class FaultsFeature(Feature):
    """Injected client crashes: in any phase, or just before or after local training."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        faults = scenario.systems.faults
        return (
            max(
                faults.client_crash_probability, faults.crash_before_train, faults.crash_after_train
            )
            > 0.0
        )

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        seed, faults = plan.scenario.scenario.seed, plan.scenario.systems.faults
        mods = [ClientMod(ModStage.FAULTS, "train", train_faults_mod(faults, seed))]
        if faults.client_crash_probability > 0.0:
            mod = evaluate_faults_mod(faults.client_crash_probability, seed)
            mods.append(ClientMod(ModStage.FAULTS, "evaluate", mod))
        return mods


def _client_and_round(message: Message) -> tuple[int, int]:
    from simfl.flower_compat.grid import message_partition

    return message_partition(message), int(message.content["config"]["server-round"])


def train_faults_mod(faults: SystemFaultsConfig, seed: int) -> Any:
    """Crash in the train phase, before training, or after it (its state already saved)."""

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        client, server_round = _client_and_round(message)
        maybe_crash(faults.client_crash_probability, seed, "train", client, server_round)
        maybe_fail(faults, seed, "before-train", client, server_round)
        reply = call_next(message, context)
        maybe_fail(faults, seed, "after-train", client, server_round)
        return reply

    return mod


def evaluate_faults_mod(probability: float, seed: int) -> Any:
    """Crash in the evaluate phase."""

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        client, server_round = _client_and_round(message)
        maybe_crash(probability, seed, "evaluate", client, server_round)
        return call_next(message, context)

    return mod
