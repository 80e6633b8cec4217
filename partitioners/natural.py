"""Natural splits: by speaker, by groups of speakers, by accent or voice family.

Flower Datasets' ``NaturalIdPartitioner`` and ``GroupedNaturalIdPartitioner`` do the grouping
for a ``datasets.Dataset`` but derive the number of partitions from the data. A simulation
fixes the number of clients, so ours check it against the speakers in the train split and say
which value fits; the order of speakers is seeded. The accent split (natural feature shift) gives
each accent or voice family clients in proportion to its speakers (at least one) and deals
that family's speakers among them, so every client speaks one accent.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import pandas as pd

from partitioners.base import P, Partitioner, parts_from_owner, require_metadata
from partitioners.errors import PartitionError
from partitioners.params import AccentParams, SpeakerGroupsParams, SpeakerParams


def _owner_from_speaker_clients(speakers: np.ndarray, client_of: dict) -> np.ndarray:
    """Client id per sample from a client id per speaker."""
    codes, uniques = pd.factorize(speakers)
    lookup = np.array([client_of[s] for s in uniques], dtype=np.int64)
    return lookup[codes]


class _SpeakerGrouping(Partitioner[P]):
    """Shuffled speakers cut into ``num_partitions`` groups of ``group_size`` (or one more)."""

    metadata_columns = ("speaker_id",)
    #: The name messages use for this split.
    kind: str

    @property
    @abstractmethod
    def group_size(self) -> int:
        """Speakers per client (the remainder of the division spread one per client)."""

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        speakers = require_metadata(metadata, "speaker_id", self.kind)
        unique = np.sort(pd.unique(speakers))
        fits = len(unique) // self.group_size
        if fits == 0:
            raise PartitionError(
                "group_size",
                f"{self.group_size} exceeds the {len(unique)} train speakers; "
                f"allowed 1..{len(unique)}",
            )
        if fits != self.num_partitions:
            raise PartitionError(
                "num_partitions",
                f"{self.kind!r} with group_size {self.group_size} over {len(unique)} train "
                f"speakers makes {fits} clients; set data.num_clients = {fits} "
                f"(got {self.num_partitions})",
            )
        order = np.random.default_rng(self.seed).permutation(unique)
        groups = np.array_split(order, self.num_partitions)
        client_of = {s: cid for cid, group in enumerate(groups) for s in group}
        return parts_from_owner(
            _owner_from_speaker_clients(speakers, client_of), self.num_partitions
        )


class SpeakerGroupsPartitioner(_SpeakerGrouping[SpeakerGroupsParams]):
    """``params.group_size`` speakers per client."""

    kind = "speaker-groups"

    @property
    def group_size(self) -> int:
        return self.params.group_size


class SpeakerPartitioner(_SpeakerGrouping[SpeakerParams]):
    """One speaker per client (``speaker-groups`` with ``group_size = 1``)."""

    kind = "speaker"

    @property
    def group_size(self) -> int:
        return 1


class AccentPartitioner(Partitioner[AccentParams]):
    """Each accent (or voice family) gets clients in proportion to its speakers, at least one."""

    metadata_columns = ("speaker_id", "accent", "voice")

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        speakers = require_metadata(metadata, "speaker_id", "accent")
        families = require_metadata(metadata, self.params.by, "accent")
        table = pd.DataFrame({"speaker": speakers, "family": families}).drop_duplicates("speaker")
        per_family = table.groupby("family")["speaker"].apply(sorted).sort_index()
        quota = self._clients_per_family(per_family.map(len).to_numpy())
        rng = np.random.default_rng(self.seed)
        client_of, next_client = {}, 0
        for members, count in zip(per_family, quota, strict=True):
            for group in np.array_split(rng.permutation(members), count):
                client_of.update({s: next_client for s in group})
                next_client += 1
        client_ids = rng.permutation(self.num_partitions)  # which client gets which family
        owner = client_ids[_owner_from_speaker_clients(speakers, client_of)]
        return parts_from_owner(owner, self.num_partitions)

    def _clients_per_family(self, speakers: np.ndarray) -> np.ndarray:
        """Clients per family: at least one, at most its speakers, else by largest remainder."""
        by = self.params.by
        if not len(speakers) <= self.num_partitions <= speakers.sum():
            raise PartitionError(
                "num_partitions",
                f"'accent' by {by} needs between {len(speakers)} ({by} families) and "
                f"{speakers.sum()} (speakers) clients, got {self.num_partitions}",
            )
        quota = np.ones(len(speakers), dtype=np.int64)
        for _ in range(self.num_partitions - len(speakers)):
            room = np.where(quota < speakers, speakers / quota, -1.0)
            quota[int(np.argmax(room))] += 1
        return quota
