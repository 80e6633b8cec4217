"""``[partition]``: how the training clips are split among clients; ``kind`` picks the family.

Each section is the partitioner's own parameter model (:mod:`partitioners.params`, which
knows nothing of scenarios) plus the ``kind`` tag that names it in a scenario file.
"""

from __future__ import annotations

from typing import Literal

from partitioners.params import (
    AccentParams,
    AcousticParams,
    ComposeParams,
    DirichletParams,
    DirichletSizesParams,
    IidParams,
    LogNormalParams,
    PathologicalParams,
    PowerLawParams,
    ShardsParams,
    SpeakerGroupsParams,
    SpeakerParams,
)
from simfl.schema.base import Section


class IidConfig(Section, IidParams):
    kind: Literal["iid"]


class DirichletConfig(Section, DirichletParams):
    kind: Literal["dirichlet"]


class PathologicalConfig(Section, PathologicalParams):
    kind: Literal["pathological"]


class ShardsConfig(Section, ShardsParams):
    kind: Literal["shards"]


class PowerLawConfig(Section, PowerLawParams):
    kind: Literal["powerlaw"]


class LogNormalConfig(Section, LogNormalParams):
    kind: Literal["lognormal"]


class DirichletSizesConfig(Section, DirichletSizesParams):
    kind: Literal["dirichlet-sizes"]


class SpeakerConfig(Section, SpeakerParams):
    kind: Literal["speaker"]


class SpeakerGroupsConfig(Section, SpeakerGroupsParams):
    kind: Literal["speaker-groups"]


class AccentConfig(Section, AccentParams):
    kind: Literal["accent"]


class AcousticConfig(Section, AcousticParams):
    kind: Literal["acoustic"]


class ComposeConfig(Section, ComposeParams):
    kind: Literal["compose"]
