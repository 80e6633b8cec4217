"""``[data]``: which dataset, its label view, how many clients, features; one class per dataset.

``dataset`` is the tag that picks the class. Each class knows only its own settings; loading
lives in :mod:`simfl.data.sources` (named lazily in :mod:`simfl.registry`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from simfl.data.local_settings import AudioFolderSettings, SpeechCommandsSettings
from simfl.data.settings import (
    TRANSCRIPT_VIEW,
    VIEWS,
    FeatureSettings,
    SynthCommandsSettings,
    SynthPhrasesSettings,
)
from simfl.schema.base import Section


class DataBase(Section):
    """``[data]`` fields every dataset shares."""

    num_clients: int = Field(ge=1, le=1_000_000)
    view: Literal[VIEWS] = "12-class"  # type: ignore[valid-type]
    local_test_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    features: FeatureSettings = FeatureSettings()
    #: Whether rows carry transcripts (label names are the texts), for speech-to-text models.
    has_transcripts: ClassVar[bool] = False

    def source_key(self) -> str:
        """Identifies the raw dataset on disk (features and partitions are cached under it)."""
        raise NotImplementedError


class SynthCommandsData(DataBase):
    """``[data] dataset = "synth-commands"``, generator settings under ``[data.synth]``."""

    dataset: Literal["synth-commands"]
    synth: SynthCommandsSettings = SynthCommandsSettings()

    def source_key(self) -> str:
        return f"synth-commands-{self.synth.cache_key()}"


class SpeechCommandsData(DataBase, SpeechCommandsSettings):
    """``[data] dataset = "speech-commands"``: a local copy of Google Speech Commands v0.02.

    ``path`` (required) and ``layout`` ("auto", "archive", "parquet") and the silence settings
    are flat ``[data]`` keys, so ``--set data.path=...`` points a scenario at the user's copy.
    """

    dataset: Literal["speech-commands"]

    def source_key(self) -> str:
        return f"speech-commands-{self.cache_key()}"


class AudioFolderData(DataBase, AudioFolderSettings):
    """``[data] dataset = "audiofolder"``: ``<split>/<label>/<audio>`` with optional metadata."""

    dataset: Literal["audiofolder"]

    def source_key(self) -> str:
        return f"audiofolder-{self.cache_key()}"


class SynthPhrasesData(DataBase):
    """``[data] dataset = "synth-phrases"``: transcribed phrases, settings under ``[data.synth]``.

    Its only view is ``"transcripts"``: each distinct text is a label, and the label names are
    the transcripts, so partitioners work unchanged and a row's text is its label's name.
    """

    dataset: Literal["synth-phrases"]
    view: Literal["transcripts"] = TRANSCRIPT_VIEW  # type: ignore[assignment]
    synth: SynthPhrasesSettings = SynthPhrasesSettings()
    has_transcripts: ClassVar[bool] = True

    def source_key(self) -> str:
        return f"synth-phrases-{self.synth.cache_key()}"
