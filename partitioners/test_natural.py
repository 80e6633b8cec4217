import numpy as np
import pandas as pd
import pytest

from partitioners.errors import PartitionError
from partitioners.natural import AccentPartitioner, SpeakerGroupsPartitioner, SpeakerPartitioner
from partitioners.params import AccentParams, SpeakerGroupsParams, SpeakerParams

# 30 speakers s0..s29, 100 clips each; accents a0, a1, a2 with 10 speakers each
METADATA = pd.DataFrame(
    {
        "speaker_id": [f"s{i % 30}" for i in range(3000)],
        "accent": [f"a{i % 30 % 3}" for i in range(3000)],
    }
)
LABELS = np.zeros(3000, dtype=np.int64)


def _error(partitioner, metadata=METADATA) -> tuple[str, str]:
    with pytest.raises(PartitionError) as error:
        partitioner.split(LABELS, metadata)
    return error.value.param, error.value.message


def _speakers_per_client(parts) -> list[set[str]]:
    speakers = METADATA["speaker_id"].to_numpy()
    return [set(speakers[p]) for p in parts]


def test_one_speaker_per_client_and_each_speaker_on_one_client():
    held = _speakers_per_client(SpeakerPartitioner(30, SpeakerParams(), 3).split(LABELS, METADATA))
    assert [len(s) for s in held] == [1] * 30
    assert set().union(*held) == {f"s{i}" for i in range(30)}


def test_speaker_groups_spread_the_remainder():
    parts = SpeakerGroupsPartitioner(7, SpeakerGroupsParams(group_size=4), 3).split(
        LABELS, METADATA
    )
    assert sorted(len(s) for s in _speakers_per_client(parts)) == [4, 4, 4, 4, 4, 5, 5]


def test_accent_clients_speak_one_accent_in_proportion_to_speakers():
    parts = AccentPartitioner(6, AccentParams(), 3).split(LABELS, METADATA)
    accents = METADATA["accent"].to_numpy()
    per_client = [set(accents[p]) for p in parts]
    assert all(len(a) == 1 for a in per_client)
    assert sorted(a.pop() for a in per_client) == ["a0", "a0", "a1", "a1", "a2", "a2"]


def test_the_number_of_clients_must_be_what_the_speakers_make():
    assert _error(SpeakerPartitioner(5, SpeakerParams(), 0)) == (
        "num_partitions",
        "'speaker' with group_size 1 over 30 train speakers makes 30 clients; "
        "set data.num_clients = 30 (got 5)",
    )
    assert _error(SpeakerGroupsPartitioner(1, SpeakerGroupsParams(group_size=31), 0)) == (
        "group_size",
        "31 exceeds the 30 train speakers; allowed 1..30",
    )
    assert _error(AccentPartitioner(2, AccentParams(), 0)) == (
        "num_partitions",
        "'accent' by accent needs between 3 (accent families) and 30 (speakers) clients, got 2",
    )


def test_a_missing_metadata_column_names_the_column():
    assert _error(SpeakerPartitioner(30, SpeakerParams(), 0), None) == (
        "metadata",
        "'speaker' needs a 'speaker_id' column in the dataset's metadata",
    )
    assert _error(AccentPartitioner(5, AccentParams(by="voice"), 0)) == (
        "metadata",
        "'accent' needs a 'voice' column in the dataset's metadata",
    )
