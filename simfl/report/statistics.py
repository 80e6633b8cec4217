"""Seed statistics a reviewer can trust: sample std, confidence intervals, paired tests, Holm.

scipy does the arithmetic (``scipy.stats.t.interval``, ``bootstrap``, ``ttest_rel``,
``rankdata``, ``friedmanchisquare``, ``studentized_range``). What this module adds is the
benchmark's rules: seeds are the replicates (sample std, ddof = 1), strategies are compared
*paired* over the seeds they share (the same seed gives the same client split), every group of
a setting is tested against that setting's best with a Holm correction (scipy has Benjamini-
Hochberg, not Holm), and with fewer than :data:`MIN_SEEDS_FOR_SIGNIFICANCE` seeds nothing is
called significant; every interval stays inside its metric's range
(:mod:`simfl.report.metric_range`): a Student-t interval is taken on the logit scale for
proportions and on the log scale for positive quantities, then mapped back (a percentile
bootstrap stays inside the data's range by construction); and the seeds a paired comparison
would need for an interval of a chosen half-width are computed from its observed spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from simfl.report.metric_range import UNBOUNDED, MetricRange

MIN_SEEDS_FOR_SIGNIFICANCE = 3
CiMethod = Literal["t", "bootstrap"]
#: Proportions at exactly 0 or 1 are moved this far inside before the logit.
LOGIT_EPSILON = 1e-4
#: The most seeds :func:`seeds_needed` reports (more: "more than this").
MAX_SEEDS = 10_000


@dataclass(frozen=True)
class Summary:
    """Mean, sample std and confidence interval of one group's per-seed values."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    interval: str = ""  # how the interval was taken (interval_method), "" when there is none


def interval_method(method: CiMethod, bounds: MetricRange, data: np.ndarray) -> str:
    """Which interval :func:`summarize` takes for ``data`` of a metric in ``bounds``."""
    if method == "bootstrap":
        return "percentile bootstrap"
    if bounds.is_proportion:
        return "t on the logit scale"
    if bounds.is_nonnegative:
        return "t on the log scale" if (data > 0).all() else "t, cut at 0"
    return "t"


def summarize(
    values: np.ndarray | list[float],
    confidence: float = 0.95,
    method: CiMethod = "t",
    seed: int = 0,
    bounds: MetricRange = UNBOUNDED,
) -> Summary:
    """Mean, std (ddof = 1) and a CI over seeds that stays inside ``bounds``.

    Student t on the scale where the metric is unbounded (logit for proportions, log for
    positive quantities; a non-negative metric with a zero among its values is cut at 0), or a
    percentile bootstrap. The interval is widened, if need be, to hold the arithmetic mean it
    is reported beside. NaNs (a seed that never reached a target, say) are left out. With one
    value the std and the interval are NaN: one seed says nothing about spread.
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
    how = interval_method(method, bounds, data)
    if std == 0.0:
        return Summary(n, mean, 0.0, mean, mean, how)
    if method == "bootstrap":
        result = stats.bootstrap(
            (data,), np.mean, confidence_level=confidence, method="percentile", rng=seed
        )
        low, high = result.confidence_interval
    elif bounds.is_proportion:
        clipped = np.clip(data, LOGIT_EPSILON, 1.0 - LOGIT_EPSILON)
        low, high = special.expit(_t_interval(special.logit(clipped), confidence))
    elif how == "t on the log scale":
        low, high = np.exp(_t_interval(np.log(data), confidence))
    else:
        low, high = _t_interval(data, confidence)
    low, high = bounds.clip(min(float(low), mean)), bounds.clip(max(float(high), mean))
    return Summary(n, mean, std, low, high, how)


def _t_interval(data: np.ndarray, confidence: float) -> tuple[float, float]:
    if data.std() == 0.0:
        return float(data.mean()), float(data.mean())
    low, high = stats.t.interval(
        confidence, df=len(data) - 1, loc=data.mean(), scale=stats.sem(data)
    )
    return float(low), float(high)


def seeds_needed(spread: float, halfwidth: float, confidence: float = 0.95) -> float:
    """The fewest seeds n (at least 2) whose t-interval of a mean, at the sample std
    ``spread``, is at most ``halfwidth`` wide on each side: t(n - 1) * spread / sqrt(n) <= h.
    NaN when the spread is unknown; :data:`MAX_SEEDS` when even that many would not do."""
    if math.isnan(spread):
        return math.nan
    quantile = 1.0 - (1.0 - confidence) / 2.0
    normal = (stats.norm.ppf(quantile) * spread / halfwidth) ** 2  # t > z: a lower bound
    for n in range(max(2, min(int(normal), MAX_SEEDS)), MAX_SEEDS + 1):
        if stats.t.ppf(quantile, n - 1) * spread / math.sqrt(n) <= halfwidth:
            return float(n)
    return float(MAX_SEEDS)


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
    paired_spread: float = math.nan  # sample std of the paired differences with the best


def paired_spread(first: pd.Series, second: pd.Series) -> float:
    """Sample std of the differences over the seeds both have (NaN with fewer than two)."""
    pairs = pd.concat([first, second], axis=1, join="inner").dropna()
    if len(pairs) < 2:
        return math.nan
    return float((pairs.iloc[:, 0] - pairs.iloc[:, 1]).std(ddof=1))


def compare_to_best(
    per_seed: dict[str, pd.Series],
    higher_is_better: bool,
    alpha: float = 0.05,
    confidence: float = 0.95,
    method: CiMethod = "t",
    bounds: MetricRange = UNBOUNDED,
) -> list[Verdict]:
    """Find the best competitor by mean; test every other one against it, paired over seeds.

    ``per_seed`` maps a competitor to its values indexed by seed. A competitor is a *tie* when
    its Holm-adjusted p-value is at least ``alpha``. Ties are only declared when every pair
    shares at least :data:`MIN_SEEDS_FOR_SIGNIFICANCE` seeds; otherwise no one is a tie. NaN
    values (a seed that never reached the target) bar a competitor from being the best when
    another one has fewer of them.
    """
    summaries = {
        name: summarize(values.to_numpy(), confidence, method, bounds=bounds)
        for name, values in per_seed.items()
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
        spread = paired_spread(per_seed[best], per_seed[name])
        verdicts.append(Verdict(name, summary, False, raw[name], adjusted[name], tie, spread))
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
