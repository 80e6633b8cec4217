"""Fault injection: clients that crash, to test what a strategy (and simfl) does about it."""

from __future__ import annotations

from simfl.schema.sections import FaultsConfig
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
