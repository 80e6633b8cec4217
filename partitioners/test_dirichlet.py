import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partitioners.dirichlet import DirichletPartitioner
from partitioners.errors import PartitionError
from partitioners.iid import IidPartitioner
from partitioners.metrics import heterogeneity_scores
from partitioners.params import DirichletParams, IidParams

LABELS = np.random.default_rng(0).integers(0, 12, size=3000)


def dirichlet(clients, alpha, min_size, seed, self_balancing=False):
    params = DirichletParams(alpha=alpha, min_size=min_size, self_balancing=self_balancing)
    return DirichletPartitioner(clients, params, seed)


def _check_cover(parts, n):
    joined = np.concatenate(parts)
    assert len(joined) == n and np.array_equal(np.sort(joined), np.arange(n))


def test_dirichlet_covers_every_sample_once_and_respects_min_size():
    parts = dirichlet(20, alpha=0.5, min_size=20, seed=1).split(LABELS)
    assert len(parts) == 20
    _check_cover(parts, len(LABELS))
    assert min(len(p) for p in parts) >= 20


def test_dirichlet_is_deterministic_for_a_seed():
    a = dirichlet(10, 0.3, 5, seed=7).split(LABELS)
    b = dirichlet(10, 0.3, 5, seed=7).split(LABELS)
    c = dirichlet(10, 0.3, 5, seed=8).split(LABELS)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_smaller_alpha_means_more_label_skew():
    skew = [
        heterogeneity_scores(dirichlet(20, a, 0, seed=0).split(LABELS), LABELS, 12)[
            "label_js_distance_mean"
        ]
        for a in (0.05, 0.5, 100.0)
    ]
    assert skew[0] > skew[1] > skew[2]


def test_infeasible_min_size_is_reported():
    with pytest.raises(PartitionError) as unlucky:
        dirichlet(20, 0.01, 149, seed=0).split(LABELS)
    assert (unlucky.value.param, unlucky.value.message) == (
        "min_size",
        "no Dirichlet(alpha=0.01) split in 100 draws gives every one of 20 clients 149 samples; "
        "lower min_size, raise alpha or use fewer clients",
    )
    with pytest.raises(PartitionError) as too_big:
        dirichlet(400, 1.0, 10, seed=0).split(LABELS)
    assert (too_big.value.param, too_big.value.message) == (
        "min_size",
        "400 clients x min_size 10 need 4000 samples, the dataset has 3000; allowed min_size <= 7",
    )
    assert str(too_big.value) == f"min_size: {too_big.value.message}"
    with pytest.raises(PartitionError) as too_many:
        dirichlet(4000, 1.0, 0, seed=0).split(LABELS)
    assert (too_many.value.param, too_many.value.message) == (
        "num_partitions",
        "4000 clients but the dataset has 3000 samples; allowed 1..3000",
    )


def test_iid_near_equal_sizes():
    parts = IidPartitioner(7, IidParams(), seed=3).split(LABELS)
    _check_cover(parts, len(LABELS))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def _js(alpha, seed, labels=LABELS, clients=10):
    parts = dirichlet(clients, alpha, 0, seed=seed).split(labels)
    return heterogeneity_scores(parts, labels, 12)["label_js_distance_mean"]


@settings(max_examples=15, deadline=None)
@given(alpha=st.floats(0.01, 1.0), seed=st.integers(0, 2**32 - 1))
def test_label_shift_score_rises_as_alpha_shrinks(alpha, seed):
    assert _js(alpha, seed) > _js(alpha * 100, seed)


def test_label_shift_score_falls_toward_zero_as_alpha_grows():
    labels = np.random.default_rng(1).integers(0, 12, size=200_000)
    scores = [_js(a, 3, labels) for a in (0.1, 1.0, 10.0, 1e3, 1e5)]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False))
    assert scores[-1] < 0.01  # only sampling noise left


def test_self_balancing_caps_growth_and_narrows_sizes():
    plain = dirichlet(20, 0.1, 0, seed=4).split(LABELS)
    balanced = dirichlet(20, 0.1, 0, seed=4, self_balancing=True).split(LABELS)
    _check_cover(balanced, len(LABELS))
    assert np.std([len(p) for p in balanced]) < np.std([len(p) for p in plain])


def test_alpha_must_be_positive():
    with pytest.raises(ValueError, match="alpha"):
        DirichletParams(alpha=0.0)
    unchecked = DirichletParams.model_construct(alpha=0.0, min_size=0, self_balancing=False)
    with pytest.raises(PartitionError) as error:
        DirichletPartitioner(5, unchecked, seed=0)
    assert (error.value.param, error.value.message) == ("alpha", "must be > 0, got 0.0")


def test_num_partitions_must_be_positive():
    with pytest.raises(PartitionError) as error:
        dirichlet(0, 1.0, 0, seed=0)
    assert (error.value.param, error.value.message) == ("num_partitions", "must be >= 1, got 0")
