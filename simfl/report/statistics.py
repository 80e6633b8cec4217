"""Seed statistics a reviewer can trust: sample std, confidence intervals, paired tests, Holm.

scipy does the arithmetic (``scipy.stats.t.interval``, ``bootstrap``, ``ttest_rel``,
``rankdata``, ``friedmanchisquare``, ``studentized_range``). What this module adds is the
benchmark's rules: seeds are the replicates (sample std, ddof = 1), strategies are compared
*paired* over the seeds they share (the same seed gives the same client split), every group of
a setting is tested against that setting's best with a Holm correction (scipy has Benjamini-
Hochberg, not Holm), and with fewer than :data:`MIN_SEEDS_FOR_SIGNIFICANCE` seeds nothing is
called significant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

MIN_SEEDS_FOR_SIGNIFICANCE = 3
CiMethod = Literal["t", "bootstrap"]


@dataclass(frozen=True)
class Summary:
    """Mean, sample std and confidence interval of one group's per-seed values."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(
    values: np.ndarray | list[float],
    confidence: float = 0.95,
    method: CiMethod = "t",
    seed: int = 0,
) -> Summary:
    """Mean, std (ddof = 1) and a CI over seeds: Student t, or a percentile bootstrap.

    NaNs (a seed that never reached a target, say) are left out. With one value the std and the
    interval are NaN: one seed says nothing about spread.
    """
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    n = len(data)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(data.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(data.std(ddof=1))
    if std == 0.0:
        return Summary(n, mean, 0.0, mean, mean)
    if method == "bootstrap":
        result = stats.bootstrap(
            (data,), np.mean, confidence_level=confidence, method="percentile", rng=seed
        )
        low, high = result.confidence_interval
    else:
        low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=stats.sem(data))
    return Summary(n, mean, std, float(low), float(high))


def paired_p_value(first: pd.Series, second: pd.Series) -> tuple[float, int]:
    """Two-sided paired t-test over the seeds both series have (indexed by seed), and that count.

    Where every seed shows the same difference scipy's t is 0/0 or x/0 (NaN or a precision
    warning); we return p = 1 for no difference and p = 0 for a constant non-zero one.
    """
    pairs = pd.concat([first, second], axis=1, join="inner").dropna()
    n = len(pairs)
    if n < 2:
        return math.nan, n
    differences = (pairs.iloc[:, 0] - pairs.iloc[:, 1]).to_numpy()
    scale = max(1.0, float(np.abs(pairs.to_numpy()).max()))
    if np.ptp(differences) <= 1e-12 * scale:  # the same difference on every seed: no variance
        return (1.0 if abs(differences[0]) <= 1e-12 * scale else 0.0), n
    return float(stats.ttest_rel(pairs.iloc[:, 0], pairs.iloc[:, 1]).pvalue), n


def holm(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaNs stay NaN.

    ``adjusted[(i)] = max_{j <= i} min(1, (m - j + 1) * p[(j)])`` over the m non-NaN p-values
    sorted ascending; reject where ``adjusted < alpha`` controls the family-wise error rate.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class Verdict:
    """One competitor in one setting against that setting's best."""

    competitor: str
    summary: Summary
    is_best: bool
    p_value: float  # raw paired p-value against the best (NaN for the best itself)
    p_holm: float  # Holm-adjusted over the setting's comparisons
    tie: bool  # not significantly worse than the best (only when significance can be claimed)


def compare_to_best(
    per_seed: dict[str, pd.Series],
    higher_is_better: bool,
    alpha: float = 0.05,
    confidence: float = 0.95,
    method: CiMethod = "t",
) -> list[Verdict]:
    """Find the best competitor by mean; test every other one against it, paired over seeds.

    ``per_seed`` maps a competitor to its values indexed by seed. A competitor is a *tie* when
    its Holm-adjusted p-value is at least ``alpha``. Ties are only declared when every pair
    shares at least :data:`MIN_SEEDS_FOR_SIGNIFICANCE` seeds; otherwise no one is a tie. NaN
    values (a seed that never reached the target) bar a competitor from being the best when
    another one has fewer of them.
    """
    summaries = {
        name: summarize(values.to_numpy(), confidence, method) for name, values in per_seed.items()
    }
    # A seed with no value (never reached the target) counts against: only competitors with the
    # fewest such seeds can be the best, so "fast on the one seed that got there" cannot win.
    unreached = {name: int(values.isna().sum()) for name, values in per_seed.items()}
    fewest = min(unreached.values(), default=0)
    ranked = [
        name
        for name in summaries
        if not math.isnan(summaries[name].mean) and unreached[name] == fewest
    ]
    if not ranked:
        return [Verdict(n, s, False, math.nan, math.nan, False) for n, s in summaries.items()]
    sign = 1.0 if higher_is_better else -1.0
    best = max(ranked, key=lambda name: sign * summaries[name].mean)
    others = [name for name in summaries if name != best]
    tested = [paired_p_value(per_seed[best], per_seed[name]) for name in others]
    raw = dict(zip(others, (p for p, _ in tested), strict=True))
    adjusted = dict(zip(others, map(float, holm([p for p, _ in tested])), strict=True))
    claimable = all(n >= MIN_SEEDS_FOR_SIGNIFICANCE for _, n in tested)
    verdicts = []
    for name, summary in summaries.items():
        if name == best:
            verdicts.append(Verdict(name, summary, True, math.nan, math.nan, False))
            continue
        tie = bool(claimable and not math.isnan(adjusted[name]) and adjusted[name] >= alpha)
        verdicts.append(Verdict(name, summary, False, raw[name], adjusted[name], tie))
    return verdicts


@dataclass(frozen=True)
class RankTest:
    """Demšar's comparison of k competitors over N settings: average ranks, Friedman, Nemenyi."""

    average_ranks: pd.Series  # competitor -> mean rank (1 = best), sorted best first
    ranks: pd.DataFrame  # settings x competitors
    friedman_p: float  # NaN when k < 3 or N < 2
    critical_difference: float  # Nemenyi CD at alpha; NaN when k < 2


def average_ranks(means: pd.DataFrame, higher_is_better: bool, alpha: float = 0.05) -> RankTest:
    """Rank competitors (columns) within each setting (row) by mean; ties share average ranks.

    Settings with a missing competitor are left out, as Demšar's test needs complete blocks.
    The Nemenyi critical difference is ``q_alpha * sqrt(k (k + 1) / (6 N))`` with ``q_alpha``
    the studentized range quantile over sqrt(2) (Demšar 2006, eq. 5).
    """
    complete = means.dropna()
    k, n = complete.shape[1], complete.shape[0]
    ranks = complete.apply(
        lambda row: pd.Series(stats.rankdata(-row if higher_is_better else row), index=row.index),
        axis=1,
    )
    average = ranks.mean().sort_values() if n else pd.Series(dtype=float)
    friedman = math.nan
    if k >= 3 and n >= 2:
        friedman = float(stats.friedmanchisquare(*(complete[c] for c in complete)).pvalue)
    cd = math.nan
    if k >= 2 and n >= 1:
        q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
        cd = float(q * math.sqrt(k * (k + 1) / (6 * n)))
    return RankTest(average, ranks, friedman, cd)
