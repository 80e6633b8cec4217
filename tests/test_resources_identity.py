"""Client resources change speed, not results: the same scenario with ``resources.num_cpus`` 1
and 2 gives bit-identical metrics (each client trains with ``train.intra_op_threads`` torch
threads), and the report of a resources sweep says so, or says where it is not so."""

from __future__ import annotations

import pandas as pd
import pytest
from tiny_scenario import tiny_scenario

from simfl.report.load import Results
from simfl.report.resources_identity import WALL_CLOCK, resources_note


@pytest.mark.ray
def test_num_cpus_1_and_2_give_bit_identical_metrics(tmp_path, tiny_cache, ray_runtime):
    from simfl.run import RunOptions, run_scenario

    frames = []
    for cpus in (1, 2):
        scenario = tiny_scenario(
            tmp_path / f"cpus-{cpus}",
            tiny_cache,
            resources={"num_cpus": cpus},
            train={"batch_size": 8, "lr": 0.05, "local_epochs": 2},
            tracking={"wandb_mode": "disabled"},
        )
        outcome = run_scenario(scenario, RunOptions(session=ray_runtime))
        frame = pd.read_parquet(outcome.run_dir / "metrics.parquet")
        frames.append(frame[[c for c in frame.columns if not WALL_CLOCK.search(c)]])
    assert frames[0]["central_loss"].notna().all()
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)


def _results(values: dict[str, list[float]]) -> Results:
    """Two seeds × num_cpus 1 and 2; ``values`` per cell id: central loss over rounds 0-1."""
    cells = pd.DataFrame(
        {
            "cell_id": list(values),
            "status": "done",
            "seed": [0, 0, 1, 1],
            "resources.num_cpus": [1, 2, 1, 2],
        }
    )
    rounds = pd.DataFrame(
        [
            {"cell_id": cell, "round": r, "central_loss": v, "round_seconds": 1.0 + i + r}
            for i, (cell, losses) in enumerate(values.items())
            for r, v in enumerate(losses)
        ]
    )
    return Results(["sweep"], {"resources.num_cpus": [1, 2]}, cells, rounds, pd.DataFrame())


def test_the_report_says_whether_resources_cells_are_identical():
    same = _results({"a": [2.0, 1.5], "b": [2.0, 1.5], "c": [2.1, 1.4], "d": [2.1, 1.4]})
    assert resources_note(same) == (
        "Cells that differ only in resources.num_cpus are numerically identical: every "
        "round's metrics but wall-clock times, in all 2 groups of such cells."
    )
    apart = _results({"a": [2.0, 1.5], "b": [2.0, 1.5], "c": [2.1, 1.4], "d": [2.1, 1.4000001]})
    assert resources_note(apart) == (
        "Cells that differ only in resources.num_cpus are NOT numerically identical in 1 of 2 "
        "groups (first: seed=1): their results depend on the resources."
    )
