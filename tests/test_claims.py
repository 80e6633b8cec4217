"""``simfl claims``: every claim of the catalogue expands to validated cells whose arms exist,
verdicts follow the paired test and Holm (checked against scipy on constructed contrasts), and
a quick run on the tiny data writes its verdict table, resumes without rerunning a cell and
lists what it claims."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from tiny_scenario import tiny_text

from simfl.claims.catalogue import ClaimSpec, catalogue
from simfl.claims.run import claim_sweep
from simfl.claims.verdict import (
    CONTRADICTED,
    INCONCLUSIVE,
    QUICK,
    REPRODUCED,
    contrast_per_seed,
    verdicts,
)
from simfl.report.statistics import seeds_needed


def test_every_claim_in_the_catalogue_expands_and_its_arms_are_cells():
    files = catalogue()
    ids = [claim.id for claim_file in files for claim in claim_file.claims]
    assert len(ids) == 13 and len(set(ids)) == 13
    for claim_file in files:
        sweep = claim_sweep(claim_file, 5, [])
        seeds = {cell.scenario.scenario.seed for cell in sweep.cells}
        assert seeds == {0, 1, 2, 3, 4}, claim_file.path.name
        for claim in claim_file.claims:
            values = {cell.cell_id: float(i) for i, cell in enumerate(sweep.cells)}
            contrast = contrast_per_seed(claim, sweep.cells, values)
            assert list(contrast.index) == [0, 1, 2, 3, 4], claim.id  # every arm, every seed


def _claim(outcome: str = "central_accuracy") -> ClaimSpec:
    return ClaimSpec(
        id="c", statement="s", source="x", outcome=outcome, better={"a": 1}, worse={"a": 0}
    )


def test_verdicts_follow_the_paired_test_and_holm():
    rng = np.random.default_rng(0)
    clear = pd.Series(0.1 + rng.normal(0, 0.01, 5), index=range(5))
    wrong = pd.Series(-0.1 + rng.normal(0, 0.01, 5), index=range(5))
    noisy = pd.Series([0.05, -0.04, 0.03, 0.01, -0.02], index=range(5))
    found = verdicts([(_claim(), clear), (_claim(), wrong), (_claim(), noisy)])
    assert [v.verdict for v in found] == [REPRODUCED, CONTRADICTED, INCONCLUSIVE]
    raw = [stats.ttest_1samp(series, 0.0).pvalue for series in (clear, wrong, noisy)]
    assert [v.p_value for v in found] == pytest.approx(raw)
    order = np.argsort(raw)  # Holm: step-down, monotone
    holm = np.maximum.accumulate([min(1.0, (3 - k) * raw[i]) for k, i in enumerate(order)])
    assert [found[i].p_holm for i in order] == pytest.approx(list(holm))
    low, high = stats.t.interval(0.95, 4, loc=noisy.mean(), scale=stats.sem(noisy))
    assert (found[2].ci_low, found[2].ci_high) == pytest.approx((low, high))
    corrected = 1 - 0.05 / 3  # Holm's strictest step over the 3 claims
    assert found[2].seeds_needed == seeds_needed(noisy.std(ddof=1), abs(noisy.mean()), corrected)
    assert math.isnan(found[0].seeds_needed)
    assert verdicts([(_claim(), clear)], quick=True)[0].verdict == QUICK


def test_lower_is_better_outcomes_flip_the_sign():
    (verdict,) = verdicts([(_claim("sim_hours_to_target"), pd.Series([-0.2, -0.3, -0.25]))])
    assert verdict.effect == pytest.approx(-0.25)  # as given: contrast_per_seed signs it
    assert verdict.verdict == CONTRADICTED


CLAIM = """
[[claims]]
id = "fedprox-differs"
statement = "FedProx and FedAvg differ on the tiny data"
source = "this test"
outcome = "central_loss"
better = { "strategy.name" = "fedprox" }
worse = { "strategy.name" = "fedavg" }

[sweep]
"strategy.name" = ["fedavg", "fedprox"]
"""


@pytest.mark.ray
def test_a_quick_run_writes_verdicts_and_resumes_without_rerunning(
    tmp_path, tiny_cache, cli, ray_runtime
):
    directory = tmp_path / "claims"
    directory.mkdir()
    text = tiny_text(tmp_path / "results", tiny_cache).replace('"offline"', '"disabled"')
    (directory / "tiny.toml").write_text(text + CLAIM)
    listed = cli("claims", "--list", "--dir", str(directory))
    assert listed.returncode == 0 and "fedprox-differs" in listed.stdout

    first = cli("claims", "--quick", "--dir", str(directory), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "4 cells" in first.stdout and "ran 4, done before 0" in first.stdout
    (out,) = (tmp_path / "results" / "claims").iterdir()
    table = pd.read_csv(out / "claims.csv")
    assert table["claim"].tolist() == ["fedprox-differs"] and table["seeds"].tolist() == [2]
    assert table["verdict"].tolist() == [QUICK]
    assert "fedprox-differs" in (out / "claims.html").read_text()

    again = cli("claims", "--quick", "--dir", str(directory), cwd=tmp_path)
    assert again.returncode == 0 and "ran 0, done before 4" in again.stdout
    assert pd.read_csv(out / "claims.csv").equals(table)


def test_bad_claim_files_are_one_line(tmp_path, tiny_cache, cli):
    directory = tmp_path / "claims"
    directory.mkdir()
    text = tiny_text(tmp_path / "results", tiny_cache)
    (directory / "bad.toml").write_text(text + CLAIM.replace('outcome = "central_loss"\n', ""))
    result = cli("claims", "--list", "--dir", str(directory))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "bad.toml" in line and "claims.0.outcome" in line
    unknown = cli("claims", "--claims", "nope", "--list")
    assert unknown.returncode == 2 and "--claims nope: unknown; allowed:" in unknown.stderr
    assert not (tmp_path / "results").exists()
