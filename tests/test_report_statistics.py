"""The report's statistics equal scipy's on fixed inputs; Holm and the verdict rules by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simfl.report.metric_range import NONNEGATIVES, PROPORTIONS, metric_range
from simfl.report.outcomes import higher_is_better
from simfl.report.statistics import (
    average_ranks,
    compare_to_best,
    holm,
    paired_p_value,
    paired_spread,
    seeds_needed,
    summarize,
)

SAMPLES = [
    [0.50, 0.52, 0.55],
    [0.812, 0.797, 0.845, 0.801],
    [12.0, 15.5, 9.25, 11.0, 14.0],
]


@pytest.mark.parametrize("values", SAMPLES)
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_t_interval_equals_scipy(values, confidence):
    summary = summarize(values, confidence)
    data = np.array(values)
    low, high = stats.t.interval(confidence, len(data) - 1, loc=data.mean(), scale=stats.sem(data))
    assert summary.n == len(values)
    assert abs(summary.mean - data.mean()) < 1e-12
    assert abs(summary.std - data.std(ddof=1)) < 1e-12  # sample std, not ddof = 0
    assert abs(summary.ci_low - low) < 1e-9 and abs(summary.ci_high - high) < 1e-9


def test_bootstrap_interval_equals_scipy_with_the_same_seed():
    data = np.array(SAMPLES[2])
    summary = summarize(data, 0.95, method="bootstrap", seed=7)
    expected = stats.bootstrap(
        (data,), np.mean, confidence_level=0.95, method="percentile", rng=7
    ).confidence_interval
    assert abs(summary.ci_low - expected.low) < 1e-9
    assert abs(summary.ci_high - expected.high) < 1e-9


def test_one_seed_has_no_spread_and_nans_are_left_out():
    single = summarize([0.7, math.nan])
    assert single.n == 1 and single.mean == 0.7
    assert math.isnan(single.std) and math.isnan(single.ci_low)
    assert summarize([]).n == 0


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ([0.50, 0.52, 0.55], [0.49, 0.515, 0.545]),
        ([0.80, 0.82, 0.81, 0.79], [0.70, 0.72, 0.71, 0.74]),
        ([3.0, 1.0, 4.0, 1.0, 5.0], [2.0, 7.0, 1.0, 8.0, 2.0]),
    ],
)
def test_paired_p_value_equals_ttest_rel(first, second):
    seeds = range(len(first))
    p, n = paired_p_value(pd.Series(first, index=seeds), pd.Series(second, index=seeds))
    assert n == len(first)
    assert abs(p - stats.ttest_rel(first, second).pvalue) < 1e-9


def test_pairs_by_seed_not_by_position():
    first = pd.Series([0.5, 0.6, 0.7, 0.9], index=[0, 1, 2, 3])
    second = pd.Series([0.68, 0.49, 0.58], index=[2, 0, 1])  # seed 3 missing, order shuffled
    p, n = paired_p_value(first, second)
    assert n == 3
    assert abs(p - stats.ttest_rel([0.5, 0.6, 0.7], [0.49, 0.58, 0.68]).pvalue) < 1e-9


def test_holm_adjusts_step_down_monotone_and_capped():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.06, 0.04) = 0.06
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert np.allclose(adjusted, [0.03, 0.06, 0.06, 0.02], atol=1e-15)
    assert np.allclose(holm([0.4, 0.6]), [0.8, 0.8])  # 0.4*2 = 0.8, then max(0.8, 0.6)
    assert np.allclose(holm([0.7, 0.9, 0.8]), [1.0, 1.0, 1.0])  # capped at 1
    with_nan = holm([0.02, math.nan, 0.03])
    assert math.isnan(with_nan[1]) and np.allclose(with_nan[[0, 2]], [0.04, 0.04])
    assert holm([0.2]).tolist() == [0.2]


def _series(values):
    return pd.Series(values, index=range(len(values)))


def test_best_and_ties_with_three_seeds():
    per_seed = {
        "fedavg": _series([0.50, 0.52, 0.55]),
        "fedprox": _series([0.49, 0.515, 0.545]),
        "fedadam": _series([0.30, 0.33, 0.29]),
    }
    verdicts = {v.competitor: v for v in compare_to_best(per_seed, higher_is_better=True)}
    assert verdicts["fedavg"].is_best and not verdicts["fedavg"].tie
    p_prox = stats.ttest_rel([0.50, 0.52, 0.55], [0.49, 0.515, 0.545]).pvalue
    p_adam = stats.ttest_rel([0.50, 0.52, 0.55], [0.30, 0.33, 0.29]).pvalue
    expected = holm([p_prox, p_adam])
    assert abs(verdicts["fedprox"].p_value - p_prox) < 1e-9
    assert abs(verdicts["fedprox"].p_holm - expected[0]) < 1e-9
    assert abs(verdicts["fedadam"].p_holm - expected[1]) < 1e-9
    assert expected[0] == pytest.approx(0.0572, abs=1e-4)  # >= alpha: a tie
    assert verdicts["fedprox"].tie is True
    assert verdicts["fedadam"].tie is False


def test_lower_is_better_picks_the_smallest_mean():
    per_seed = {"a": _series([2.0, 2.1, 2.2]), "b": _series([1.0, 1.2, 1.1])}
    verdicts = {v.competitor: v for v in compare_to_best(per_seed, higher_is_better=False)}
    assert verdicts["b"].is_best and not verdicts["a"].is_best


def test_fewer_than_three_seeds_declares_no_ties():
    per_seed = {"a": _series([0.5, 0.52]), "b": _series([0.49, 0.53])}
    verdicts = {v.competitor: v for v in compare_to_best(per_seed, higher_is_better=True)}
    assert verdicts["a"].is_best
    assert verdicts["b"].tie is False and not math.isnan(verdicts["b"].p_value)


def test_average_ranks_friedman_and_nemenyi_cd():
    means = pd.DataFrame(
        {
            "fedavg": [0.5, 0.8, 0.6, 0.7],
            "fedprox": [0.4, 0.9, 0.5, 0.7],
            "fedadam": [0.1, 0.2, 0.3, 0.2],
        },
        index=["a", "b", "c", "d"],
    )
    test = average_ranks(means, higher_is_better=True)
    # ranks per row: (1,2,3), (2,1,3), (1,2,3), (1.5,1.5,3)
    assert test.average_ranks.to_dict() == {"fedavg": 1.375, "fedprox": 1.625, "fedadam": 3.0}
    expected_p = stats.friedmanchisquare(means["fedavg"], means["fedprox"], means["fedadam"]).pvalue
    assert abs(test.friedman_p - expected_p) < 1e-12
    # Demšar (2006), Table 5(a): q_0.05 = 2.343 for k = 3; CD = q * sqrt(k (k + 1) / (6 N))
    assert test.critical_difference == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 4)), abs=1e-3)


def test_constant_differences_need_no_t_test():
    seeds = range(3)
    same = pd.Series([0.5, 0.6, 0.7], index=seeds)
    assert paired_p_value(same, same.copy()) == (1.0, 3)
    assert paired_p_value(same + 0.1, same) == (0.0, 3)  # always better by exactly 0.1


@pytest.mark.parametrize(
    ("outcome", "higher"),
    [
        ("central_accuracy", True),
        ("best:fed_accuracy_worst10", True),
        ("pers_accuracy_mean", True),
        ("central_loss", False),
        ("central_wer", False),
        ("rounds_to_target", False),
        ("time_to_target_s", False),
        ("s_per_round", False),
        ("mb_total", False),
        ("sum:bytes_up", False),
        ("epsilon", False),
        ("sum:sim_time_s", False),
        ("clients_failed", False),
    ],
)
def test_direction_of_better_follows_the_metric_name(outcome, higher):
    assert higher_is_better(outcome) is higher


def test_a_competitor_that_missed_the_target_on_a_seed_cannot_be_best():
    per_seed = {
        "fast-once": _series([3.0, math.nan, math.nan]),  # reached on one seed only
        "steady": _series([9.0, 10.0, 11.0]),
    }
    verdicts = {v.competitor: v for v in compare_to_best(per_seed, higher_is_better=False)}
    assert verdicts["steady"].is_best and not verdicts["fast-once"].is_best


# Intervals that respect their metric's range, checked against an independent computation.


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize(
    "values",
    [[0.088, 0.188], [0.2, 0.9], [0.08, 0.51, 0.43], [0.01, 0.02, 0.97], [0.0, 1.0], [1.0, 0.95]],
)
def test_accuracy_intervals_are_logit_t_and_never_leave_0_1(values):
    summary = summarize(values, bounds=metric_range("central_accuracy"))
    clipped = np.clip(values, 1e-4, 1 - 1e-4)
    logits = np.log(clipped / (1 - clipped))
    scale = logits.std(ddof=1) / math.sqrt(len(values))
    half = stats.t.ppf(0.975, len(values) - 1) * scale
    mean = float(np.mean(values))
    assert summary.interval == "t on the logit scale"
    assert summary.ci_low == pytest.approx(min(_expit(logits.mean() - half), mean), abs=1e-12)
    assert summary.ci_high == pytest.approx(max(_expit(logits.mean() + half), mean), abs=1e-12)
    assert 0.0 <= summary.ci_low <= mean <= summary.ci_high <= 1.0
    plain = summarize(values)  # the unbounded Student t, blind to the metric's range
    if len(values) == 2 and values == [0.088, 0.188]:
        assert plain.ci_low < 0.0 < summary.ci_low  # the case a reviewer circles


@pytest.mark.parametrize("n", [2, 3, 5])
def test_no_interval_of_any_method_leaves_the_metric_range(n):
    rng = np.random.default_rng(n)
    for _ in range(200):
        accuracies = rng.beta(0.5, 0.5, size=n)
        seconds = rng.exponential(3.0, size=n) * rng.integers(0, 2, size=n)  # zeros among them
        for method in ("t", "bootstrap"):
            a = summarize(accuracies, method=method, bounds=metric_range("fed_accuracy_worst10"))
            s = summarize(seconds, method=method, bounds=metric_range("time_to_target_s"))
            assert 0.0 <= a.ci_low <= a.mean <= a.ci_high <= 1.0
            assert 0.0 <= s.ci_low <= s.mean <= s.ci_high


def test_positive_quantities_take_t_on_the_log_scale_and_zeros_cut_at_0():
    summary = summarize([1.0, 3.0, 9.0], bounds=metric_range("mb_total"))
    logs = np.log([1.0, 3.0, 9.0])
    low, high = stats.t.interval(0.95, 2, loc=logs.mean(), scale=stats.sem(logs))
    assert summary.interval == "t on the log scale"
    assert (summary.ci_low, summary.ci_high) == pytest.approx((math.exp(low), math.exp(high)))
    cut = summarize([0.0, 3.0], bounds=metric_range("rounds_to_target"))
    _, high = stats.t.interval(0.95, 1, loc=1.5, scale=stats.sem([0.0, 3.0]))
    assert cut.interval == "t, cut at 0" and cut.ci_low == 0.0 and cut.ci_high == high
    assert metric_range("central_loss") == metric_range("epsilon") == NONNEGATIVES
    assert metric_range("best:central_accuracy") == PROPORTIONS


def test_seeds_needed_on_a_constructed_example():
    # paired std 0.05, half-width 0.02 at 95%: t(n-1) * 0.05 / sqrt(n) <= 0.02 first at n = 27
    assert stats.t.ppf(0.975, 25) * 0.05 / math.sqrt(26) > 0.02
    assert stats.t.ppf(0.975, 26) * 0.05 / math.sqrt(27) <= 0.02
    assert seeds_needed(0.05, 0.02) == 27
    assert seeds_needed(0.0, 0.02) == 2
    assert math.isnan(seeds_needed(math.nan, 0.02))
    first = pd.Series([0.50, 0.60, 0.70, 0.65], index=[0, 1, 2, 3])
    second = pd.Series([0.45, 0.52, 0.69, 0.60], index=[3, 0, 1, 2])  # paired by seed
    differences = np.array([0.50 - 0.52, 0.60 - 0.69, 0.70 - 0.60, 0.65 - 0.45])
    assert paired_spread(first, second) == pytest.approx(differences.std(ddof=1))
