import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partitioners.label_shift import PathologicalPartitioner, ShardsPartitioner
from simfl.errors import ScenarioError


@settings(max_examples=30, deadline=None)
@given(
    classes=st.integers(2, 12),
    clients=st.integers(2, 30),
    k=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_pathological_gives_exactly_k_labels_per_client(classes, clients, k, seed):
    k = min(k, classes)
    if clients * k < classes:
        k = -(-classes // clients)
    labels = np.random.default_rng(seed).permutation(np.arange(3000) % classes)
    parts = PathologicalPartitioner(clients, k, seed, min_size=1).split(labels)
    assert [len(np.unique(labels[p])) for p in parts] == [k] * clients
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(labels)))


def test_pathological_rejects_k_above_the_number_of_labels():
    labels = np.arange(100) % 5
    with pytest.raises(ScenarioError, match=r"key 'partition.k'.*allowed 1..5"):
        PathologicalPartitioner(4, 6, 0).split(labels)
    with pytest.raises(ScenarioError, match=r"key 'partition.k'.*allowed k >= 3"):
        PathologicalPartitioner(2, 1, 0).split(labels)


def test_shards_cover_everything_with_few_labels_each():
    labels = np.random.default_rng(0).integers(0, 10, size=2000)
    parts = ShardsPartitioner(50, 2, seed=1).split(labels)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(2000))
    assert max(len(np.unique(labels[p])) for p in parts) <= 4  # 2 shards, each <= 2 labels
    with pytest.raises(ScenarioError, match="partition.shards_per_client"):
        ShardsPartitioner(600, 4, seed=1).split(labels)
