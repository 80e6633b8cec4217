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
    """Selects a uniformly random split into near-equal parts (no heterogeneity)."""


class DirichletConfig(Section, DirichletParams):
    kind: Literal["dirichlet"]
    """Selects label shift: each class's samples are shared among the clients by
    Dirichlet(``alpha``) proportions."""


class PathologicalConfig(Section, PathologicalParams):
    kind: Literal["pathological"]
    """Selects label shift with exactly ``k`` distinct labels per client."""


class ShardsConfig(Section, ShardsParams):
    kind: Literal["shards"]
    """Selects label shift by label-sorted shards, ``shards_per_client`` per client."""


class PowerLawConfig(Section, PowerLawParams):
    kind: Literal["powerlaw"]
    """Selects quantity skew: client sizes from a power law (Pareto ``exponent``), labels
    IID."""


class LogNormalConfig(Section, LogNormalParams):
    kind: Literal["lognormal"]
    """Selects quantity skew: client sizes from a log-normal (``sigma``), labels IID."""


class DirichletSizesConfig(Section, DirichletSizesParams):
    kind: Literal["dirichlet-sizes"]
    """Selects quantity skew: client size shares ~ Dirichlet(``alpha``), labels IID."""


class SpeakerConfig(Section, SpeakerParams):
    kind: Literal["speaker"]
    """Selects the natural split by speaker: one train speaker per client, so
    ``data.num_clients`` must equal the train speakers."""


class SpeakerGroupsConfig(Section, SpeakerGroupsParams):
    kind: Literal["speaker-groups"]
    """Selects the natural split by groups of ``group_size`` train speakers per client."""


class AccentConfig(Section, AccentParams):
    kind: Literal["accent"]
    """Selects natural feature shift: every client's speakers share one accent (or voice)."""


class AcousticConfig(Section, AcousticParams):
    kind: Literal["acoustic"]
    """Selects acoustic feature shift: an IID split, each client recording through its own
    seeded channel (noise, band-pass, gain, speed, reverb), applied before feature extraction."""


class ComposeConfig(Section, ComposeParams):
    kind: Literal["compose"]
    """Selects a composition of label shift, quantity skew and acoustic feature shift (at
    least one of ``label``, ``quantity``, ``acoustic``)."""
