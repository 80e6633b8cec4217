"""The report of a resources sweep says whether cells that differ only in ``resources.*`` are
numerically identical, or where they are not (the runs themselves are compared on the
quickstart scenario in ``test_quickstart.py``)."""

from __future__ import annotations

import pandas as pd

from simfl.report.load import Results
from simfl.report.resources_identity import resources_note


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
