"""A claim's verdict: its effect over paired seeds, an interval, a Holm-corrected test.

The effect of a comparison is, per seed, its contrast (better arm minus worse arm, or the
weighted terms), signed so that positive is the claimed direction (lower-is-better outcomes
such as time and loss flip). scipy does the test (``ttest_1samp`` on the per-seed contrasts,
which for two arms is the paired t-test) and the interval; what this module adds is the rule:
Holm across every claim of the run, *reproduced* or *contradicted* only when significant after
it, else *inconclusive* with the seeds a decision would need at the observed paired spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from simfl.claims.catalogue import ClaimSpec
from simfl.errors import ScenarioError
from simfl.report.load import scenario_value
from simfl.report.outcomes import higher_is_better
from simfl.report.statistics import holm, seeds_needed
from simfl.sweep.grid import Cell

REPRODUCED, CONTRADICTED, INCONCLUSIVE, QUICK = (
    "reproduced",
    "contradicted",
    "inconclusive",
    "no verdict (--quick)",
)


@dataclass(frozen=True)
class Verdict:
    claim: ClaimSpec
    seeds: int
    effect: float  # mean per-seed contrast, positive = as claimed
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float
    verdict: str
    seeds_needed: float  # for a decision at the observed effect and spread (inconclusive only)

    def row(self) -> dict[str, Any]:
        return {
            "claim": self.claim.id,
            "statement": self.claim.statement,
            "source": self.claim.source,
            "outcome": self.claim.outcome,
            "seeds": self.seeds,
            "effect": self.effect,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p": self.p_value,
            "p_holm": self.p_holm,
            "verdict": self.verdict,
            "seeds_needed": self.seeds_needed,
        }


def contrast_per_seed(claim: ClaimSpec, cells: list[Cell], values: dict[str, float]) -> pd.Series:
    """The claim's signed contrast for every seed all its arms have (index: seed)."""
    resolved = {cell.cell_id: cell.scenario.model_dump(mode="json") for cell in cells}
    total: pd.Series | None = None
    for term in claim.contrast():
        arm = {
            cell.scenario.scenario.seed: values.get(cell.cell_id, math.nan)
            for cell in cells
            if all(scenario_value(resolved[cell.cell_id], k) == v for k, v in term.where.items())
        }
        if not arm:
            raise ScenarioError(f"claim {claim.id}: no cell has {term.where}", key="claims.where")
        part = pd.Series(arm, dtype=float) * term.weight
        total = part if total is None else total.add(part)  # seeds missing in an arm: NaN
    assert total is not None, "a contrast has at least one term"
    sign = 1.0 if higher_is_better(claim.outcome) else -1.0
    return (total * sign).dropna().sort_index()


def verdicts(
    contrasts: list[tuple[ClaimSpec, pd.Series]],
    alpha: float = 0.05,
    confidence: float = 0.95,
    quick: bool = False,
) -> list[Verdict]:
    """Each claim's effect, interval and test, Holm-corrected across all of them."""
    tests = [_test(series) for _, series in contrasts]
    raw = [p for p, _ in tests]
    valid = [i for i, p in enumerate(raw) if not math.isnan(p)]
    adjusted = [math.nan] * len(raw)
    for index, value in zip(valid, holm([raw[i] for i in valid]), strict=True):
        adjusted[index] = float(value)
    out = []
    for (claim, series), (p, _), p_holm in zip(contrasts, tests, adjusted, strict=True):
        data = series.to_numpy()
        effect = float(data.mean()) if len(data) else math.nan
        low, high = _interval(data, confidence)
        corrected = alpha / max(1, len(valid))
        verdict, needed = _decide(data, effect, p_holm, alpha, corrected, quick)
        out.append(Verdict(claim, len(data), effect, low, high, p, p_holm, verdict, needed))
    return out


def _test(series: pd.Series) -> tuple[float, int]:
    """Two-sided one-sample t-test of the contrasts against 0 (a constant contrast: p = 0 if
    non-zero, 1 if zero, where scipy's t is x/0)."""
    data = series.to_numpy()
    if len(data) < 2:
        return math.nan, len(data)
    if np.allclose(data, data[0], rtol=0.0, atol=1e-12 * max(1.0, abs(float(data[0])))):
        return (0.0 if abs(float(data[0])) > 1e-12 else 1.0), len(data)
    return float(stats.ttest_1samp(data, 0.0).pvalue), len(data)


def _interval(data: np.ndarray, confidence: float) -> tuple[float, float]:
    """A t-interval of the mean contrast (a difference: unbounded, so no transform)."""
    if len(data) < 2:
        return math.nan, math.nan
    if data.std() == 0.0:
        return float(data.mean()), float(data.mean())
    low, high = stats.t.interval(confidence, len(data) - 1, loc=data.mean(), scale=stats.sem(data))
    return float(low), float(high)


def _decide(
    data: np.ndarray, effect: float, p_holm: float, alpha: float, corrected: float, quick: bool
) -> tuple[str, float]:
    """The verdict; when inconclusive, the seeds whose interval at the corrected level
    (``corrected``: α over the claims tested, Holm's strictest step) would exclude 0 at the
    observed effect and paired spread."""
    if quick:
        return QUICK, math.nan
    if not math.isnan(p_holm) and p_holm < alpha:
        return (REPRODUCED if effect > 0 else CONTRADICTED), math.nan
    spread = float(data.std(ddof=1)) if len(data) >= 2 else math.nan
    needed = seeds_needed(spread, abs(effect), 1.0 - corrected) if effect else math.nan
    return INCONCLUSIVE, needed
