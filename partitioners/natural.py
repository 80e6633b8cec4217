"""Natural splits: by speaker, by groups of speakers, by accent or voice family.

Flower Datasets' ``NaturalIdPartitioner`` and ``GroupedNaturalIdPartitioner`` do the grouping
for a ``datasets.Dataset`` but derive the number of partitions from the data. A scenario fixes
``data.num_clients``, so ours check it against the speakers in the train split and say which
value fits; the order of speakers is seeded. The accent split (natural feature shift) gives
each accent or voice family clients in proportion to its speakers (at least one) and deals
that family's speakers among them, so every client speaks one accent.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from partitioners.base import Partitioner, parts_from_owner, require_metadata
from simfl.errors import ScenarioError


class SpeakerConfig(BaseModel):
    """``kind = "speaker"``: one client per train speaker (``data.num_clients`` = speakers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["speaker"]


class SpeakerGroupsConfig(BaseModel):
    """``kind = "speaker-groups"``: each client holds ``group_size`` speakers (remainder spread)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["speaker-groups"]
    group_size: int = Field(default=4, ge=1)


class AccentConfig(BaseModel):
    """``kind = "accent"``: every client speaks one accent (or one eSpeak voice variant)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["accent"]
    by: Literal["accent", "voice"] = "accent"


def _owner_from_speaker_clients(speakers: np.ndarray, client_of: dict) -> np.ndarray:
    codes, uniques = pd.factorize(speakers)
    lookup = np.array([client_of[s] for s in uniques], dtype=np.int64)
    return lookup[codes]


class SpeakerGroupsPartitioner(Partitioner):
    """Shuffled speakers cut into ``num_partitions`` groups of ``group_size`` (or one more)."""

    metadata_columns = ("speaker_id",)
    kind = "speaker-groups"

    def __init__(self, num_partitions: int, group_size: int, seed: int) -> None:
        super().__init__(num_partitions, seed)
        self.group_size = group_size

    @classmethod
    def from_config(cls, config: SpeakerGroupsConfig, num_partitions: int, seed: int):
        return cls(num_partitions, config.group_size, seed)

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        speakers = require_metadata(metadata, "speaker_id", self.kind)
        unique = np.sort(pd.unique(speakers))
        fits = len(unique) // self.group_size
        if fits == 0:
            raise ScenarioError(
                f"key 'partition.group_size': {self.group_size} exceeds the {len(unique)} "
                f"train speakers; allowed 1..{len(unique)}"
            )
        if fits != self.num_partitions:
            raise ScenarioError(
                f"key 'data.num_clients': {self.kind!r} with group_size {self.group_size} over "
                f"{len(unique)} train speakers makes {fits} clients; set data.num_clients = "
                f"{fits} (got {self.num_partitions})"
            )
        order = np.random.default_rng(self.seed).permutation(unique)
        groups = np.array_split(order, self.num_partitions)
        client_of = {s: cid for cid, group in enumerate(groups) for s in group}
        return parts_from_owner(
            _owner_from_speaker_clients(speakers, client_of), self.num_partitions
        )


class SpeakerPartitioner(SpeakerGroupsPartitioner):
    """One speaker per client (``speaker-groups`` with ``group_size = 1``)."""

    kind = "speaker"

    def __init__(self, num_partitions: int, seed: int) -> None:
        super().__init__(num_partitions, 1, seed)

    @classmethod
    def from_config(cls, config: SpeakerConfig, num_partitions: int, seed: int):
        return cls(num_partitions, seed)


class AccentPartitioner(Partitioner):
    metadata_columns = ("speaker_id", "accent", "voice")

    def __init__(self, num_partitions: int, by: str, seed: int) -> None:
        super().__init__(num_partitions, seed)
        self.by = by

    @classmethod
    def from_config(cls, config: AccentConfig, num_partitions: int, seed: int):
        return cls(num_partitions, config.by, seed)

    def split(self, labels: np.ndarray, metadata: pd.DataFrame | None = None) -> list[np.ndarray]:
        speakers = require_metadata(metadata, "speaker_id", "accent")
        families = require_metadata(metadata, self.by, "accent")
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
        if not len(speakers) <= self.num_partitions <= speakers.sum():
            raise ScenarioError(
                f"key 'data.num_clients': 'accent' by {self.by} needs between {len(speakers)} "
                f"({self.by} families) and {speakers.sum()} (speakers) clients, "
                f"got {self.num_partitions}"
            )
        quota = np.ones(len(speakers), dtype=np.int64)
        for _ in range(self.num_partitions - len(speakers)):
            room = np.where(quota < speakers, speakers / quota, -1.0)
            quota[int(np.argmax(room))] += 1
        return quota
