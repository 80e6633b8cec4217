import numpy as np
import pytest
from scipy import stats

from partitioners.errors import PartitionError
from partitioners.params import DirichletSizesParams, LogNormalParams, PowerLawParams
from partitioners.quantity import QuantityPartitioner

TOTAL, CLIENTS, MIN = 2_000_000, 400, 20


def _spare_sizes(config, seed=0):
    """Client sizes above the minimum (what the distribution governs)."""
    sizes = QuantityPartitioner(CLIENTS, config, seed).sizes(TOTAL)
    assert sizes.sum() == TOTAL and sizes.min() >= MIN
    return (sizes - MIN).astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lognormal_sizes_fit_a_lognormal(seed):
    logs = np.log(_spare_sizes(LogNormalParams(sigma=0.8, min_size=MIN), seed))
    # the scale is fixed by the total, so the location is free; the shape must be N(., 0.8)
    assert stats.kstest(logs - logs.mean(), "norm", args=(0, 0.8)).pvalue > 0.01
    other = stats.kstest(logs - logs.mean(), "norm", args=(0, 1.6))
    assert other.pvalue < 0.01  # and the test can tell a different sigma


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_powerlaw_sizes_fit_a_pareto(seed):
    spare = _spare_sizes(PowerLawParams(exponent=1.5, min_size=MIN), seed)
    ratio = np.log(spare / spare.min())  # log of Pareto(x_m) / x_m ~ Exponential(1 / exponent)
    assert stats.kstest(ratio, "expon", args=(0, 1 / 1.5)).pvalue > 0.01


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dirichlet_sizes_fit_beta_marginals(seed):
    alpha = 0.5
    config = DirichletSizesParams(alpha=alpha, min_size=MIN)
    shares = _spare_sizes(config, seed)
    shares /= TOTAL - CLIENTS * MIN
    beta = stats.beta(alpha, (CLIENTS - 1) * alpha)
    assert stats.kstest(shares, beta.cdf).pvalue > 0.01


def test_infeasible_minimum_is_reported():
    params = LogNormalParams(min_size=30)
    with pytest.raises(PartitionError) as too_big:
        QuantityPartitioner(40, params, 0).split(np.zeros(1000, dtype=int))
    assert (too_big.value.param, too_big.value.message) == (
        "min_size",
        "40 clients x min_size 30 need 1200 samples, the dataset has 1000",
    )
    with pytest.raises(PartitionError) as too_many:
        QuantityPartitioner(2000, params, 0).split(np.zeros(1000, dtype=int))
    assert (too_many.value.param, too_many.value.message) == (
        "num_partitions",
        "2000 clients but the dataset has 1000 samples; allowed 1..1000",
    )


def test_kind_tag_defaults_to_the_distribution():
    assert PowerLawParams().kind == "powerlaw"
    assert LogNormalParams(sigma=0.5).model_dump() == {
        "min_size": 10,
        "kind": "lognormal",
        "sigma": 0.5,
    }
