import numpy as np
import pytest
from scipy import stats

from partitioners.quantity import (
    DirichletSizesConfig,
    LogNormalConfig,
    PowerLawConfig,
    QuantityPartitioner,
)
from simfl.errors import ScenarioError

TOTAL, CLIENTS, MIN = 2_000_000, 400, 20


def _spare_sizes(config, seed=0):
    """Client sizes above the minimum (what the distribution governs)."""
    sizes = QuantityPartitioner(CLIENTS, config, seed).sizes(TOTAL)
    assert sizes.sum() == TOTAL and sizes.min() >= MIN
    return (sizes - MIN).astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lognormal_sizes_fit_a_lognormal(seed):
    logs = np.log(_spare_sizes(LogNormalConfig(kind="lognormal", sigma=0.8, min_size=MIN), seed))
    # the scale is fixed by the total, so the location is free; the shape must be N(., 0.8)
    assert stats.kstest(logs - logs.mean(), "norm", args=(0, 0.8)).pvalue > 0.01
    other = stats.kstest(logs - logs.mean(), "norm", args=(0, 1.6))
    assert other.pvalue < 0.01  # and the test can tell a different sigma


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_powerlaw_sizes_fit_a_pareto(seed):
    spare = _spare_sizes(PowerLawConfig(kind="powerlaw", exponent=1.5, min_size=MIN), seed)
    ratio = np.log(spare / spare.min())  # log of Pareto(x_m) / x_m ~ Exponential(1 / exponent)
    assert stats.kstest(ratio, "expon", args=(0, 1 / 1.5)).pvalue > 0.01


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dirichlet_sizes_fit_beta_marginals(seed):
    alpha = 0.5
    config = DirichletSizesConfig(kind="dirichlet-sizes", alpha=alpha, min_size=MIN)
    shares = _spare_sizes(config, seed)
    shares /= TOTAL - CLIENTS * MIN
    beta = stats.beta(alpha, (CLIENTS - 1) * alpha)
    assert stats.kstest(shares, beta.cdf).pvalue > 0.01


def test_infeasible_minimum_is_reported():
    config = LogNormalConfig(kind="lognormal", min_size=30)
    with pytest.raises(ScenarioError, match="key 'partition.min_size'"):
        QuantityPartitioner(40, config, 0).split(np.zeros(1000, dtype=int))
    with pytest.raises(ScenarioError, match="key 'data.num_clients'"):
        QuantityPartitioner(2000, config, 0).split(np.zeros(1000, dtype=int))
