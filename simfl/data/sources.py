"""Dataset loaders: each ``[data]`` section (:mod:`simfl.schema.data`) as a DatasetDict.

Every source yields splits ``train`` and ``test`` (held-out speakers) with an int16 ``audio``
column at 16 kHz and metadata columns (``word``, ``speaker_id``, ``accent``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import datasets

from simfl.data.audiofolder import load_audiofolder
from simfl.data.speech_commands import load_speech_commands
from simfl.data.synth_commands import load_synth_commands
from simfl.data.synth_phrases import load_synth_phrases
from simfl.schema.data import (
    AudioFolderData,
    SpeechCommandsData,
    SynthCommandsData,
    SynthPhrasesData,
)

ProgressFn = Callable[[int, int], None]


def load_synth_source(
    config: SynthCommandsData, cache_dir: Path, progress: ProgressFn | None = None
) -> datasets.DatasetDict:
    return load_synth_commands(config.synth, cache_dir, progress=progress)


def load_speech_commands_source(
    config: SpeechCommandsData, cache_dir: Path, progress: ProgressFn | None = None
) -> datasets.DatasetDict:
    return load_speech_commands(config, cache_dir, progress=progress)


def load_audiofolder_source(
    config: AudioFolderData, cache_dir: Path, progress: ProgressFn | None = None
) -> datasets.DatasetDict:
    return load_audiofolder(config, cache_dir, progress=progress)


def load_phrases_source(
    config: SynthPhrasesData, cache_dir: Path, progress: ProgressFn | None = None
) -> datasets.DatasetDict:
    return load_synth_phrases(config.synth, cache_dir, progress=progress)
