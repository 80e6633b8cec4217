"""The Flower nodes a run registers: a cohort's worth, plus those central evaluation's slices
take; and waiting for Flower to register them."""

from __future__ import annotations

import time
from collections.abc import Callable

from flwr.serverapp import Grid

from simfl.config import Scenario
from simfl.engine.central_slices import MAX_SLICES
from simfl.engine.extensions import features_for
from simfl.engine.interrupt import RoundAbandoned
from simfl.errors import SimflError
from simfl.flower_compat.grid import cohort_size


def engine_slots(scenario: Scenario) -> int:
    """Flower nodes a run needs: the largest cohort of a round (training or evaluation).

    Clients are virtual (partitions named in each message), so this, not the population,
    decides how many nodes Flower registers: a training cohort as the scenario's features
    enlarge it (over-selection) and its strategy runs it (FedBuff's concurrent clients), plus
    the nodes central evaluation's slices take (:func:`side_slots`).
    """
    strategy, num_clients = scenario.strategy, scenario.data.num_clients
    train = cohort_size(num_clients, strategy.fraction_train, strategy.min_train_nodes)
    for feature in features_for(scenario):
        train = feature.train_nodes(train)
    train = strategy.train_nodes(train)
    evaluate = cohort_size(num_clients, strategy.fraction_evaluate, strategy.min_evaluate_nodes)
    return max(train, evaluate) + side_slots(scenario)


def side_slots(scenario: Scenario) -> int:
    """Flower nodes kept for central evaluation's slices on the actors (simfl.engine.
    central_slices), where ``resources.evaluation_overlap`` may put it there."""
    return MAX_SLICES if scenario.resources.evaluation_overlap in ("auto", "actors") else 0


def wait_for_nodes(
    grid: Grid, expected: int, timeout: float, abandoned: Callable[[], bool] = lambda: False
) -> list[int]:
    """Flower registers simulated nodes while the ServerApp already runs: wait for all (or
    until a stop signal ``abandoned`` the start)."""
    deadline = time.monotonic() + timeout
    while len(node_ids := sorted(grid.get_node_ids())) < expected:
        if abandoned():
            raise RoundAbandoned(0)
        if time.monotonic() > deadline:
            raise SimflError(f"only {len(node_ids)} of {expected} nodes connected in {timeout} s")
        time.sleep(0.05)
    return node_ids
