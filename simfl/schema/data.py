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
    """Clients in the federation: the partitioner splits the training split into this many
    parts, one per client (speaker partitions need it to fit the train speakers)."""
    view: Literal[VIEWS] = "12-class"  # type: ignore[valid-type]
    """Label view: ``12-class`` is the standard Speech Commands task (ten commands, unknown and
    silence, the last two subsampled to an average command's size); ``35-class`` makes every
    word its own class and drops silence."""
    local_test_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    """Share of each client's clips held out (seeded) as its local test split for federated and
    personalized evaluation; 0: none, which needs ``strategy.fraction_evaluate = 0``."""
    features: FeatureSettings = FeatureSettings()
    """``[data.features]``: the log-mel (or Whisper) features computed once and cached."""
    #: Whether rows carry transcripts (label names are the texts), for speech-to-text models.
    has_transcripts: ClassVar[bool] = False

    def source_key(self) -> str:
        """Identifies the raw dataset on disk (features and partitions are cached under it)."""
        raise NotImplementedError


class SynthCommandsData(DataBase):
    """``[data] dataset = "synth-commands"``, generator settings under ``[data.synth]``."""

    dataset: Literal["synth-commands"]
    """Selects Speech Commands words synthesized offline with eSpeak NG by seeded synthetic
    speakers (1 s clips over background noise); test clips come from held-out speakers."""
    synth: SynthCommandsSettings = SynthCommandsSettings()
    """``[data.synth]``: the generator's settings (words, speakers, takes, noise, seed)."""

    def source_key(self) -> str:
        return f"synth-commands-{self.synth.cache_key()}"


class SpeechCommandsData(DataBase, SpeechCommandsSettings):
    """``[data] dataset = "speech-commands"``: a local copy of Google Speech Commands v0.02.

    ``path`` (required) and ``layout`` ("auto", "archive", "parquet") and the silence settings
    are flat ``[data]`` keys, so ``--set data.path=...`` points a scenario at the user's copy.
    """

    dataset: Literal["speech-commands"]
    """Selects a local copy of Google Speech Commands v0.02 (never downloaded), converted once
    into the cache; the test split is the official testing list (held-out speakers)."""

    def source_key(self) -> str:
        return f"speech-commands-{self.cache_key()}"


class AudioFolderData(DataBase, AudioFolderSettings):
    """``[data] dataset = "audiofolder"``: ``<split>/<label>/<audio>`` with optional metadata."""

    dataset: Literal["audiofolder"]
    """Selects a local ``train/<label>/<audio>`` and ``test/<label>/<audio>`` directory (WAV,
    FLAC, OGG) with optional ``metadata.csv`` or ``metadata.jsonl``; labels are folder names."""

    def source_key(self) -> str:
        return f"audiofolder-{self.cache_key()}"


class SynthPhrasesData(DataBase):
    """``[data] dataset = "synth-phrases"``: transcribed phrases, settings under ``[data.synth]``.

    Its only view is ``"transcripts"``: each distinct text is a label, and the label names are
    the transcripts, so partitioners work unchanged and a row's text is its label's name.
    """

    dataset: Literal["synth-phrases"]
    """Selects transcribed command phrases and digit strings spoken by synthetic speakers, for
    speech-to-text (``model.name = "whisper-asr"``)."""
    view: Literal["transcripts"] = TRANSCRIPT_VIEW  # type: ignore[assignment]
    """The only view of transcribed data: every distinct text is a class named by the text."""
    synth: SynthPhrasesSettings = SynthPhrasesSettings()
    """``[data.synth]``: the generator's settings (phrases, digit strings, speakers, noise)."""
    has_transcripts: ClassVar[bool] = True

    def source_key(self) -> str:
        return f"synth-phrases-{self.synth.cache_key()}"
