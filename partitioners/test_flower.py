"""The Flower Datasets adapter: the same split as ``split``, served by ``load_partition``."""

import datasets
import numpy as np
import pytest
from flwr_datasets.partitioner import Partitioner as FlowerDatasetsPartitioner

from partitioners.errors import PartitionError
from partitioners.flower import FlowerPartitioner
from partitioners.natural import AccentPartitioner, SpeakerPartitioner
from partitioners.params import AccentParams, SpeakerParams
from partitioners.test_properties import FACTORIES, _metadata


@pytest.mark.parametrize("name", ["dirichlet", "pathological", "speaker-groups", "compose"])
def test_flower_datasets_interface(name):
    rng = np.random.default_rng(0)
    labels, metadata = rng.integers(0, 6, size=900), _metadata(900, rng)
    dataset = datasets.Dataset.from_pandas(metadata.assign(label=labels))
    partitioner = FlowerPartitioner(FACTORIES[name](5, 7))
    partitioner.dataset = dataset
    expected = FACTORIES[name](5, 7).split(labels, metadata)
    assert isinstance(partitioner, FlowerDatasetsPartitioner)
    assert partitioner.num_partitions == 5
    for pid in range(5):
        part = partitioner.load_partition(pid)
        assert part["label"] == labels[expected[pid]].tolist()


def test_partition_by_another_column_with_string_values():
    words = np.array(["yes", "no", "up", "down"])[np.random.default_rng(1).integers(0, 4, 400)]
    dataset = datasets.Dataset.from_dict({"word": words.tolist()})
    partitioner = FlowerPartitioner(FACTORIES["pathological"](4, 3), partition_by="word")
    partitioner.dataset = dataset
    codes = np.searchsorted(np.array(["down", "no", "up", "yes"]), words)  # sorted factorization
    expected = FACTORIES["pathological"](4, 3).split(codes)
    assert [partitioner.load_partition(p)["word"] for p in range(4)] == [
        words[e].tolist() for e in expected
    ]


def test_a_missing_metadata_column_is_a_partition_error():
    dataset = datasets.Dataset.from_dict({"label": [0, 1] * 20, "speaker_id": ["a", "b"] * 20})
    partitioner = FlowerPartitioner(SpeakerPartitioner(2, SpeakerParams(), 0))
    partitioner.dataset = dataset
    assert len(partitioner.load_partition(0)) == 20  # speaker_id is there: one speaker each
    by_accent = FlowerPartitioner(AccentPartitioner(2, AccentParams(), 0))
    by_accent.dataset = dataset
    with pytest.raises(PartitionError) as error:
        by_accent.load_partition(0)
    assert (error.value.param, error.value.message) == (
        "metadata",
        "'accent' needs a 'accent' column in the dataset's metadata",
    )
