"""Properties every partitioner must have, checked by hypothesis over random labels and seeds."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partitioners import params
from partitioners.compose import ComposePartitioner
from partitioners.dirichlet import DirichletPartitioner
from partitioners.feature_shift import AcousticPartitioner
from partitioners.iid import IidPartitioner
from partitioners.label_shift import PathologicalPartitioner, ShardsPartitioner
from partitioners.natural import AccentPartitioner, SpeakerGroupsPartitioner
from partitioners.quantity import QuantityPartitioner

MIN_SIZE = 3


def _metadata(n: int, rng: np.random.Generator) -> pd.DataFrame:
    speakers = rng.integers(0, 40, size=n)
    speakers[:40] = np.arange(40)  # every speaker present
    return pd.DataFrame(
        {"speaker_id": [f"s{s:02d}" for s in speakers], "accent": [f"a{s % 4}" for s in speakers]}
    )


def _dirichlet(balanced: bool) -> params.DirichletParams:
    return params.DirichletParams(alpha=0.3, min_size=MIN_SIZE, self_balancing=balanced)


COMPOSE = params.ComposeParams.model_validate(
    {
        "label": {"alpha": 0.5, "min_size": MIN_SIZE},
        "quantity": {"kind": "lognormal", "sigma": 0.5, "min_size": MIN_SIZE},
        "acoustic": {"severity": 0.5},
    }
)

FACTORIES = {
    "iid": lambda n, seed: IidPartitioner(n, params.IidParams(), seed),
    "dirichlet": lambda n, seed: DirichletPartitioner(n, _dirichlet(False), seed),
    "dirichlet-balanced": lambda n, seed: DirichletPartitioner(n, _dirichlet(True), seed),
    "pathological": lambda n, seed: PathologicalPartitioner(
        n, params.PathologicalParams(k=3, min_size=MIN_SIZE), seed
    ),
    "shards": lambda n, seed: ShardsPartitioner(n, params.ShardsParams(shards_per_client=2), seed),
    "powerlaw": lambda n, seed: QuantityPartitioner(
        n, params.PowerLawParams(min_size=MIN_SIZE), seed
    ),
    "lognormal": lambda n, seed: QuantityPartitioner(
        n, params.LogNormalParams(min_size=MIN_SIZE), seed
    ),
    # 40 speakers in groups of 40 // n: the number of clients that group size makes
    "speaker-groups": lambda n, seed: SpeakerGroupsPartitioner(
        40 // (40 // n), params.SpeakerGroupsParams(group_size=40 // n), seed
    ),
    "accent": lambda n, seed: AccentPartitioner(n, params.AccentParams(by="accent"), seed),
    "acoustic": lambda n, seed: AcousticPartitioner(n, params.AcousticParams(severity=0.7), seed),
    "compose": lambda n, seed: ComposePartitioner(n, COMPOSE, seed),
}

cases = st.tuples(
    st.integers(min_value=600, max_value=2000),  # samples
    st.integers(min_value=4, max_value=12),  # classes
    st.integers(min_value=4, max_value=10),  # clients
    st.integers(min_value=0, max_value=2**32 - 1),  # seed
)


@pytest.mark.parametrize("name", FACTORIES)
@settings(max_examples=12, deadline=None)
@given(case=cases)
def test_every_sample_in_exactly_one_partition_and_min_size(name, case):
    n, classes, clients, seed = case
    rng = np.random.default_rng(seed)
    labels, metadata = rng.integers(0, classes, size=n), _metadata(n, rng)
    partitioner = FACTORIES[name](clients, seed)
    parts = partitioner.split(labels, metadata)
    assert len(parts) == partitioner.num_partitions
    joined = np.concatenate(parts)
    assert np.array_equal(np.sort(joined), np.arange(n))  # each index exactly once
    assert all(np.array_equal(p, np.sort(p)) for p in parts)
    if name not in ("iid", "shards", "speaker-groups", "accent", "acoustic"):
        assert min(len(p) for p in parts) >= MIN_SIZE


@pytest.mark.parametrize("name", FACTORIES)
@settings(max_examples=6, deadline=None, derandomize=True)
@given(case=cases)
def test_same_seed_same_split_other_seed_other_split(name, case):
    n, classes, clients, seed = case
    rng = np.random.default_rng(seed)
    labels, metadata = rng.integers(0, classes, size=n), _metadata(n, rng)
    first = FACTORIES[name](clients, seed).split(labels, metadata)
    again = FACTORIES[name](clients, seed).split(labels, metadata)
    other = FACTORIES[name](clients, seed + 1).split(labels, metadata)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
