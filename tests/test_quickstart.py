"""The quickstart scenario itself (``scenarios/quickstart.toml``, its data synthesized in full):
its metrics do not depend on ``resources.num_cpus``.

Three rounds: enough for a thread count that followed ``num_cpus`` to change round 3's central
accuracy between num_cpus 1 and 2; the data is synthesized once for the module.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from simfl.config import load_scenario
from simfl.report.resources_identity import WALL_CLOCK

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"


@pytest.fixture(scope="module")
def quickstart_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding the quickstart's synthesized dataset and features."""
    from simfl.pipeline import prepare_scenario_data

    cache = tmp_path_factory.mktemp("quickstart-cache")
    prepare_scenario_data(load_scenario(QUICKSTART, [f"tracking.cache_dir={cache}"]))
    return cache


@pytest.mark.ray
def test_quickstart_metrics_are_bit_identical_at_num_cpus_1_and_2(
    tmp_path, quickstart_cache, ray_runtime
):
    from simfl.run import RunOptions, run_scenario

    frames = []
    for cpus in (1, 2):
        scenario = load_scenario(
            QUICKSTART,
            [
                "scenario.rounds=3",
                f"resources.num_cpus={cpus}",
                f"tracking.cache_dir={quickstart_cache}",
                f"tracking.results_dir={tmp_path / f'cpus-{cpus}'}",
                "tracking.wandb_mode=disabled",
            ],
        )
        outcome = run_scenario(scenario, RunOptions(session=ray_runtime))
        frame = pd.read_parquet(outcome.run_dir / "metrics.parquet")
        frames.append(frame[[c for c in frame.columns if not WALL_CLOCK.search(c)]])
    assert list(frames[0]["round"]) == [0, 1, 2, 3]
    assert frames[0]["central_accuracy"].iloc[-1] > 2 / 12  # it learns: chance is 1/12
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
