"""The privacy-utility report of a sweep directory: the table and the figure, noise 0 included
(epsilon = inf: a row marked as such and a reference line, not a point on the log axis)."""

from __future__ import annotations

import json
import math

import pandas as pd

from simfl.privacy.report import write_privacy_report

CELLS = [  # noise, seed, epsilon, accuracy, auc, tpr
    (0.0, 0, math.inf, 0.70, 0.66, 0.02),
    (0.0, 1, math.inf, 0.60, 0.64, 0.04),
    (1.0, 0, 55.6, 0.10, 0.50, 0.00),
    (1.0, 1, 55.6, 0.12, 0.52, 0.02),
]


def test_report_marks_noise_zero_and_averages_over_seeds(tmp_path):
    rows = []
    for i, (noise, seed, epsilon, accuracy, auc, tpr) in enumerate(CELLS):
        cell = tmp_path / "cells" / f"c{i}"
        cell.mkdir(parents=True)
        final = {"epsilon": epsilon, "central_accuracy": accuracy, "mia_auc": auc,
                 "mia_tpr_at_1pct_fpr": tpr}  # fmt: skip
        (cell / "summary.json").write_text(json.dumps({"final": final}))
        rows.append({"cell_id": f"c{i}", "label": "", "privacy.noise_multiplier": noise,
                     "seeds": seed, "status": "done", "error": None})  # fmt: skip
    pd.DataFrame(rows).to_parquet(tmp_path / "index.parquet")
    figure = write_privacy_report(tmp_path)
    assert figure.read_bytes().startswith(b"\x89PNG")
    lines = (tmp_path / "privacy_utility.md").read_text().splitlines()
    assert lines[2] == "| 0.0 | ∞ (no noise) | 0.650 ± 0.071 | 0.650 ± 0.014 | 0.030 ± 0.014 |"
    assert lines[3] == "| 1.0 | 55.60 ± 0.00 | 0.110 ± 0.014 | 0.510 ± 0.014 | 0.010 ± 0.014 |"
