import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partitioners.errors import PartitionError
from partitioners.label_shift import PathologicalPartitioner, ShardsPartitioner
from partitioners.params import PathologicalParams, ShardsParams


def pathological(clients, k, seed, min_size=1):
    return PathologicalPartitioner(clients, PathologicalParams(k=k, min_size=min_size), seed)


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
    parts = pathological(clients, k, seed, min_size=1).split(labels)
    assert [len(np.unique(labels[p])) for p in parts] == [k] * clients
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(labels)))


def _error(partitioner, labels) -> tuple[str, str]:
    with pytest.raises(PartitionError) as error:
        partitioner.split(labels)
    return error.value.param, error.value.message


def test_pathological_rejects_k_above_the_number_of_labels():
    labels = np.arange(100) % 5
    assert _error(pathological(4, 6, 0), labels) == (
        "k",
        "6 labels per client, but the data has 5 labels; allowed 1..5",
    )
    assert _error(pathological(2, 1, 0), labels) == (
        "k",
        "2 clients x k=1 labels cannot hold all 5 labels; allowed k >= 3 (or more clients)",
    )


def test_pathological_rejects_a_label_with_fewer_samples_than_holders():
    labels = np.array([0] * 50 + [1] * 50 + [2])  # label 2: one sample, two holders
    assert _error(pathological(6, 1, 0), labels) == (
        "k",
        "label 2 has 1 samples for 2 clients holding it; lower k or data.num_clients",
    )


def test_shards_cover_everything_with_few_labels_each():
    labels = np.random.default_rng(0).integers(0, 10, size=2000)
    parts = ShardsPartitioner(50, ShardsParams(shards_per_client=2), seed=1).split(labels)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(2000))
    assert max(len(np.unique(labels[p])) for p in parts) <= 4  # 2 shards, each <= 2 labels
    assert _error(ShardsPartitioner(600, ShardsParams(shards_per_client=4), seed=1), labels) == (
        "shards_per_client",
        "600 clients x 4 shards need 2400 samples, the dataset has 2000",
    )
