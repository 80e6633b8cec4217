"""One pipeline, built once: source -> features -> view -> split -> acoustic condition -> index.

Each stage is handed what the previous one made (the loaded dataset travels on to the acoustic
stage instead of being loaded again). This is also the one place where the data-dependent half
of validation runs: checks that need the dataset or the model (partition feasibility, local
layers that must name model parameters) raise :class:`~simfl.errors.ScenarioError` with their
key, and leave here naming the scenario's file. The schema half ran when the file was loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from partitioners.errors import PartitionError
from simfl.config import Scenario
from simfl.data.prepare import PreparedData, StageProgress, prepare_data
from simfl.engine.extensions import features_for
from simfl.errors import ScenarioError
from simfl.federation import Federation, build_federation


@dataclass(frozen=True)
class PreparedRun:
    """Everything a run needs on disk before the first round."""

    data: PreparedData
    federation: Federation


def prepare_scenario_data(
    scenario: Scenario, progress: StageProgress | None = None
) -> PreparedData:
    """The first stages only (source, features, view), e.g. for ``simfl data prepare``."""
    try:
        return prepare_data(scenario.data, Path(scenario.tracking.cache_dir), progress)
    except ScenarioError as error:
        raise error.with_source(scenario.source) from None


def prepare_run(scenario: Scenario, progress: StageProgress | None = None) -> PreparedRun:
    """Build (or reuse from the cache) every stage of ``scenario``'s data pipeline."""
    cache_dir = Path(scenario.tracking.cache_dir)
    try:
        check_model_names(scenario)
        for feature in features_for(scenario):
            feature.check_inputs()
        data = prepare_data(scenario.data, cache_dir, progress)
        federation = build_federation(scenario, data, cache_dir, progress)
    except ScenarioError as error:
        raise error.with_source(scenario.source) from None
    except PartitionError as error:
        key = scenario_key(error.param)
        raise ScenarioError(error.message, key=key, source=scenario.source) from None
    return PreparedRun(data, federation)


def scenario_key(param: str) -> str:
    """The scenario key behind a partitioner's parameter name (see :mod:`partitioners.errors`)."""
    if param == "num_partitions":
        return "data.num_clients"
    if param == "metadata":
        return "partition.kind"
    return f"partition.{param}"


def check_model_names(scenario: Scenario) -> None:
    """``strategy.local_layers`` patterns must each match a state-dict entry of the model.

    Needs the model's parameter names, so it builds the model (on the CPU, with two classes:
    names do not depend on the class count) and belongs to preparation, not to the schema.
    """
    patterns = scenario.strategy.local_layers
    if not patterns:
        return
    from simfl import registry
    from simfl.personalization import unmatched_patterns

    entry = registry.MODELS[scenario.model.name]
    model = entry.load()(scenario.model, 2 if entry.task == "classification" else None)
    missing = unmatched_patterns(model, patterns)
    if missing:
        names = ", ".join(model.state_dict())
        raise ScenarioError(
            f"{missing} match no parameter of model {scenario.model.name!r} (names: {names})",
            key="strategy.local_layers",
        )
