"""Dataset sources: the ``[data]`` schema of each dataset and how to load it as a DatasetDict.

Every source yields splits ``train`` and ``test`` (held-out speakers) with an int16 ``audio``
column at 16 kHz and metadata columns (``word``, ``speaker_id``, ``accent``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

import datasets
from pydantic import BaseModel, ConfigDict, Field

from simfl.data.audiofolder import load_audiofolder
from simfl.data.settings import (
    TRANSCRIPT_VIEW,
    VIEWS,
    AudioFolderSettings,
    FeatureSettings,
    SpeechCommandsSettings,
    SynthCommandsSettings,
    SynthPhrasesSettings,
)
from simfl.data.speech_commands import load_speech_commands
from simfl.data.synth_commands import load_synth_commands
from simfl.data.synth_phrases import load_synth_phrases

ProgressFn = Callable[[int, int], None]


class DataBase(BaseModel):
    """``[data]`` fields every dataset shares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


def load_synth_source(
    config: SynthCommandsData, cache_dir: Path, progress: ProgressFn | None = None
) -> datasets.DatasetDict:
    return load_synth_commands(config.synth, cache_dir, progress=progress)


class SpeechCommandsData(DataBase, SpeechCommandsSettings):
    """``[data] dataset = "speech-commands"``: a local copy of Google Speech Commands v0.02.

    ``path`` (required) and ``layout`` ("auto", "archive", "parquet") and the silence settings
    are flat ``[data]`` keys, so ``--set data.path=...`` points a scenario at the user's copy.
    """

    dataset: Literal["speech-commands"]

    def source_key(self) -> str:
        return f"speech-commands-{self.cache_key()}"


def load_speech_commands_source(
    config: SpeechCommandsData, cache_dir: Path, progress: ProgressFn | None = None
) -> datasets.DatasetDict:
    return load_speech_commands(config, cache_dir, progress=progress)


class AudioFolderData(DataBase, AudioFolderSettings):
    """``[data] dataset = "audiofolder"``: ``<split>/<label>/<audio>`` with optional metadata."""

    dataset: Literal["audiofolder"]

    def source_key(self) -> str:
        return f"audiofolder-{self.cache_key()}"


def load_audiofolder_source(
    config: AudioFolderData, cache_dir: Path, progress: ProgressFn | None = None
) -> datasets.DatasetDict:
    return load_audiofolder(config, cache_dir, progress=progress)


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


def load_phrases_source(
    config: SynthPhrasesData, cache_dir: Path, progress: ProgressFn | None = None
) -> datasets.DatasetDict:
    return load_synth_phrases(config.synth, cache_dir, progress=progress)
