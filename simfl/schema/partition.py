"""``[partition]``: how the training clips are split among clients; ``kind`` picks the family."""

from __future__ import annotations

from partitioners.compose import ComposeConfig
from partitioners.dirichlet import DirichletConfig
from partitioners.feature_shift import AcousticConfig
from partitioners.iid import IidConfig
from partitioners.label_shift import PathologicalConfig, ShardsConfig
from partitioners.natural import AccentConfig, SpeakerConfig, SpeakerGroupsConfig
from partitioners.quantity import DirichletSizesConfig, LogNormalConfig, PowerLawConfig

__all__ = [
    "AccentConfig",
    "AcousticConfig",
    "ComposeConfig",
    "DirichletConfig",
    "DirichletSizesConfig",
    "IidConfig",
    "LogNormalConfig",
    "PathologicalConfig",
    "PowerLawConfig",
    "ShardsConfig",
    "SpeakerConfig",
    "SpeakerGroupsConfig",
]
