"""How many clients run at once: Flower's actor pool on a Ray budget, and a round's sample.

Pure arithmetic (no Ray, no Flower imported), so ``simfl sweep --emit-slurm`` and ``--status``
can state it for a SLURM task without starting anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.sections import ResourcesConfig


def client_concurrency(cluster: dict[str, float], resources: ResourcesConfig) -> int:
    """How many clients Flower's actor pool runs at once with these ``client_resources``."""
    slots = int(cluster.get("CPU", 0.0) // resources.num_cpus)
    if resources.num_gpus > 0:
        slots = min(slots, int(cluster.get("GPU", 0.0) // resources.num_gpus))
    return slots


def clients_per_round(scenario: Scenario) -> int:
    """Clients a round trains: Flower's ``max(int(fraction_train * n), min_train_nodes)``."""
    strategy, available = scenario.strategy, scenario.data.num_clients
    return min(available, max(int(available * strategy.fraction_train), strategy.min_train_nodes))


#: Actor calls per actor in one exchange when ``clients_per_call`` is 0 (auto): few enough that
#: Ray's per-call cost vanishes, enough that actors finishing at different times even out.
CALLS_PER_ACTOR = 4


def calls_per_exchange(cohort: int, resources: ResourcesConfig, actors: int) -> int:
    """How many actor calls an exchange with ``cohort`` clients goes out in, on ``actors``
    actors (0: unknown, one call per client)."""
    if resources.clients_per_call:
        return -(-cohort // resources.clients_per_call)
    if actors <= 0:
        return cohort
    return min(cohort, CALLS_PER_ACTOR * actors)


def evaluation_overlap(setting: str, cores_left: float, on_gpu: bool) -> str:
    """Where central evaluation runs while the next round trains (``resources.
    evaluation_overlap``): "driver" (a thread of the driver), "actors" (slices queued behind the
    round's clients, :mod:`simfl.engine.central_slices`) or "off" (in order, as each round
    ends). "auto": the driver where its machine has a core (``cores_left``) that no actor on it
    takes; else the actors, when they run on CPUs; else in order. Beside actors that take every
    core, the driver's thread would make the threads share the cores, which slows each of them
    by more than overlapping saves (``simfl bench w1`` shows where the evaluation ran)."""
    if setting != "auto":
        return setting
    if cores_left >= 1.0:
        return "driver"
    return "off" if on_gpu else "actors"
