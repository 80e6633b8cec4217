"""The engine's extension points: everything a feature may add to a run, declared in one place.

The engine (round loop, client handlers, transport) knows no feature. Privacy, systems
heterogeneity, injected faults, Byzantine attacks and strategy-specific client steps each
implement :class:`Feature` and are named in :data:`simfl.plugins.FEATURES`; the engine asks
the features that apply to a scenario (:func:`features_for`) for their parts, in registration
order, at these points:

==========================  ===================================================================
point                       what a feature returns
==========================  ===================================================================
``client_mods``             Flower mods on the train or evaluate handler (:class:`ClientMod`),
                            composed by :class:`ModStage`, outermost first; a mod may change
                            the client's workspace (its labels, its trainer) before training
``adapt_model``             the model every process builds, changed (e.g. BatchNorm replaced)
``wrap_strategy``           the Flower strategy, wrapped (e.g. central DP)
``server_callbacks``        callbacks that add metrics after each round or stop the run
``round_planner``           who may be sampled and whose update counts (one feature at most)
``training_exchange``       how a training round's messages travel (e.g. SecAgg+)
``train_nodes``             how many Flower nodes a training round needs (over-selection)
``check_inputs``            the data-phase checks of its input files (traces), before a run
``summary``                 a section of ``summary.json``
==========================  ===================================================================

Two more points are named where they belong: a strategy's federation loop by its registry entry
(:attr:`simfl.registry.Entry.loop`), and trackers (results directory, W&B, console) as
:class:`simfl.tracking.callbacks.RunCallback`. A new feature is a module with a
:class:`Feature` subclass plus one line in :data:`simfl.plugins.FEATURES`.

Feature modules are imported on every Ray actor that unpickles their mods, so they import
nothing heavy at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    from flwr.app import Message
    from flwr.serverapp import Grid
    from flwr.serverapp.strategy import Strategy
    from torch import nn

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan
    from simfl.engine.records import ClientFailure
    from simfl.engine.round_planner import RoundPlanner
    from simfl.engine.server_callbacks import ServerCallback


class ModStage(IntEnum):
    """Where a client mod sits in the chain, outermost first (lower runs first)."""

    ENCRYPTION = 5  # what leaves the client, last: HE encrypts the finished reply
    PROTOCOL = 10  # what travels and how: DP noise seeding, SecAgg+, clipping, local DP
    FAULTS = 20  # injected crashes, before and after training
    ATTACK = 30  # Byzantine clients: their labels before training, their update after it
    MEASURE = 40  # measurements of the received model (q-FFL's loss at the global model)
    TRAINER = 50  # the local training algorithm itself (DP-SGD)


#: A Flower mod: ``mod(message, context, call_next) -> Message``.
Mod = Callable[..., Any]


@dataclass(frozen=True)
class ClientMod:
    """A Flower mod for one handler (``"train"`` or ``"evaluate"``) at a stage of the chain."""

    stage: ModStage
    handler: Literal["train", "evaluate"]
    mod: Mod


@dataclass(frozen=True)
class EvaluationData:
    """The central test set, for callbacks that measure the global model (rows of the test
    feature store, their labels, and one speaker id per row where the dataset has them)."""

    rows: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray | None = None


@dataclass(frozen=True)
class ExchangeResult:
    """A training exchange as the round loop records it: the replies to aggregate, the
    failures, the bytes each way and any metrics of the protocol."""

    ok: list[Message]
    failures: list[ClientFailure]
    bytes_down: int
    bytes_up: int
    metrics: dict[str, float]


class TrainingExchange:
    """How a training round's messages travel when a feature takes that over (SecAgg+):
    ``exchange`` sends them over ``grid`` and returns what the round loop records."""

    name = "training exchange"

    def exchange(self, server_round: int, messages: list[Message], grid: Grid) -> ExchangeResult:
        raise NotImplementedError


class Feature:
    """A feature of a run: each hook returns what the feature adds, and nothing by default.

    Built once per process for a scenario it :meth:`applies` to; hooks that take a ``plan``
    run where the plan is (the server, or a Ray actor for :meth:`client_mods` and
    :meth:`adapt_model`).
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        """Whether the scenario uses this feature at all."""
        raise NotImplementedError

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        return []

    def adapt_model(self, plan: RunPlan, model: nn.Module) -> nn.Module:
        return model

    def wrap_strategy(self, plan: RunPlan, strategy: Strategy) -> Strategy:
        return strategy

    def server_callbacks(self, plan: RunPlan, evaluation: EvaluationData) -> list[ServerCallback]:
        return []

    def round_planner(self, plan: RunPlan) -> RoundPlanner | None:
        return None

    def training_exchange(self, plan: RunPlan) -> TrainingExchange | None:
        return None

    def train_nodes(self, cohort: int) -> int:
        """Flower nodes a training round of ``cohort`` sampled clients needs."""
        return cohort

    def check_inputs(self) -> None:
        """Check the files the feature reads (raise ScenarioError naming the key), while the
        data is prepared: nothing is written before a bad input is refused."""

    def summary(self) -> dict[str, Any] | None:
        """What ``summary.json`` says about this feature, under its registry name."""
        return None


def features_for(scenario: Scenario) -> list[Feature]:
    """The registered features that ``scenario`` uses, built, in registration order."""
    from simfl import plugins

    return [
        feature(scenario)
        for feature in (entry.load() for entry in plugins.FEATURES.values())
        if feature.applies(scenario)
    ]


def feature_summaries(features: list[Feature]) -> dict[str, dict[str, Any]]:
    """Each feature's ``summary.json`` section, under its registry name."""
    from simfl import plugins

    names = {entry.load(): name for name, entry in plugins.FEATURES.items()}
    return {
        names[type(feature)]: section
        for feature in features
        if (section := feature.summary()) is not None
    }


def client_mods(plan: RunPlan, handler: str) -> list[Mod]:
    """The mods the features add to ``handler``, in stage order (stable within a stage)."""
    mods = [
        mod
        for feature in features_for(plan.scenario)
        for mod in feature.client_mods(plan)
        if mod.handler == handler
    ]
    return [mod.mod for mod in sorted(mods, key=lambda mod: mod.stage)]


def single(features: list[Feature], hook: Callable[[Feature], Any], point: str) -> Any:
    """What the one feature that provides ``point`` returns (None if none does); two
    features that both provide it are a conflict the scenario must not reach."""
    found = [(type(f).__name__, part) for f in features if (part := hook(f)) is not None]
    if len(found) > 1:
        from simfl.errors import SimflError

        names = ", ".join(name for name, _ in found)
        raise SimflError(f"features {names} each provide the {point}; only one may")
    return found[0][1] if found else None
