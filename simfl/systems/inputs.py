"""The data-dependent half of ``[systems]`` validation: trace files, read before any result.

Run by :func:`simfl.pipeline.prepare_run`, so a missing, malformed or unsafe trace is one line
naming the key and the file, exit code 2, before the run's results directory exists.
"""

from __future__ import annotations

from simfl.config import Scenario
from simfl.errors import ScenarioError
from simfl.systems.availability import build_availability
from simfl.systems.profiles import draw_profiles
from simfl.systems.traces import TraceError


def check_systems_inputs(scenario: Scenario) -> None:
    """Read every trace ``[systems]`` names; a bad one raises a ScenarioError with its key."""
    systems, n, seed = scenario.systems, scenario.data.num_clients, scenario.scenario.seed
    if systems.devices.distribution == "trace":
        try:
            draw_profiles(systems.devices, n, seed)
        except TraceError as error:
            raise ScenarioError(str(error), key="systems.devices.trace") from None
    if systems.availability.kind == "trace":
        try:
            build_availability(systems.availability, n, seed)
        except TraceError as error:
            raise ScenarioError(str(error), key="systems.availability.trace") from None
