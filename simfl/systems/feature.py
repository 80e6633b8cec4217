"""``[systems]`` as a feature of a run: the round planner (devices, availability, deadlines,
over-selection and the simulated clock, :mod:`simfl.systems.rounds`) and the extra Flower nodes
over-selection samples. Injected faults and Byzantine attacks are features of their own
(:mod:`simfl.systems.faults`, :mod:`simfl.systems.attacks`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simfl.engine.extensions import Feature
from simfl.schema.systems import over_selected

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan
    from simfl.engine.round_planner import RoundPlanner


class SystemsFeature(Feature):
    """Systems heterogeneity for synchronous rounds."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return scenario.systems.enabled

    def round_planner(self, plan: RunPlan) -> RoundPlanner:
        from simfl.systems.rounds import systems_plan

        return systems_plan(plan)

    def train_nodes(self, cohort: int) -> int:
        return over_selected(cohort, self.scenario.systems.over_selection)

    def check_inputs(self) -> None:
        from simfl.systems.inputs import check_systems_inputs

        check_systems_inputs(self.scenario)
