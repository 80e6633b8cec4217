"""Fault injection: clients that crash, to test what a strategy (and simfl) does about it."""

from __future__ import annotations

from simfl.schema.sections import FaultsConfig
from simfl.schema.systems import SystemFaultsConfig
from simfl.seeding import rng_for


class InjectedClientFault(RuntimeError):
    """Raised inside a ClientApp on purpose; it travels as an ordinary client failure."""


def maybe_crash(
    config: FaultsConfig, seed: int, phase: str, client: int, server_round: int
) -> None:
    if config.client_crash_probability <= 0.0:
        return
    if (
        rng_for(seed, f"fault-{phase}", client, server_round).random()
        < config.client_crash_probability
    ):
        raise InjectedClientFault(
            f"injected {phase} crash in client {client}, round {server_round} "
            f"(faults.client_crash_probability={config.client_crash_probability})"
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
