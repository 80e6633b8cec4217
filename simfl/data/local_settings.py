"""Settings of the datasets a user has locally (Speech Commands, any audiofolder directory).

Like :mod:`simfl.data.settings`, whose conventions these models follow, this module imports only
the standard library, pydantic and standard-library-only simfl modules: a scenario is validated
without torch, ``datasets`` or pandas. Whether a local copy is where ``path`` says is checked
when the data is prepared (``check_local_copy``), never while validating.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from simfl.data.local_copies import (
    Layout,
    folder_fingerprint,
    resolve_layout,
    source_fingerprint,
    split_dirs,
)
from simfl.data.settings import short_hash
from simfl.errors import ScenarioError

#: Bump whenever the converted audio or metadata would change: it is part of every cache key.
SPEECH_COMMANDS_LOADER_VERSION = 1


class SpeechCommandsSettings(BaseModel):
    """Where the local copy is and how silence is cut (all of it is in the cache key)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    path: str = Field(min_length=1)
    """Directory of the local copy (``~`` expanded): the extracted ``speech_commands_v0.02``
    archive or a checkout of the Hub's Parquet conversion; checked when the data is prepared."""
    layout: Literal["auto", "archive", "parquet"] = "auto"
    """Which form ``path`` holds: ``archive`` (``<word>/<speaker>_nohash_<n>.wav`` and the split
    lists), ``parquet`` (``v0.02/{train,test}/*.parquet``), or ``auto`` to detect it."""
    silence_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
    """Silence clips added to each split, as a fraction of its word clips: 1 s windows cut at
    seeded offsets and levels from the background-noise recordings; 0: no silence."""
    silence_test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    """Final share of every background-noise recording reserved for test silence windows, so
    test silence never overlaps training silence."""
    silence_seed: int = Field(default=0, ge=0, le=2**32 - 1)
    """Seed of the silence windows' offsets and levels and of their dealing to speakers (the
    silence is part of the cached dataset, not of ``scenario.seed``)."""

    @property
    def root(self) -> Path:
        return Path(self.path).expanduser().resolve()

    def check_local_copy(self) -> None:
        """ScenarioError unless ``path`` holds the layout asked for (or one that is detected)."""
        _check_directory(self.path, "point it at your local copy")
        try:
            self.resolved_layout()
        except ValueError as error:
            raise ScenarioError(f"key 'data': {error}") from None

    def resolved_layout(self) -> Layout:
        """The layout named, checked against the directory, or the one detected there."""
        return resolve_layout(self.root, self.layout)

    def cache_key(self) -> str:
        """Stable hash of the settings, the resolved path and layout, and the files' stats."""
        layout = self.resolved_layout()
        return short_hash(
            {
                "loader": SPEECH_COMMANDS_LOADER_VERSION,
                **self.model_dump(mode="json", include=set(SpeechCommandsSettings.model_fields)),
                "path": str(self.root),
                "layout": layout,
                "files": source_fingerprint(str(self.root), layout),
            }
        )


# ------------------------------------------------------------------------------- audiofolder

AUDIOFOLDER_LOADER_VERSION = 1


class AudioFolderSettings(BaseModel):
    """Where the folder is and which metadata columns hold speakers and accents."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    path: str = Field(min_length=1)
    """Directory holding ``train/`` and ``test/`` (``~`` expanded); checked when the data is
    prepared."""
    speaker_column: str = "speaker_id"
    """Metadata column with each file's speaker; without it the speaker comes from a Speech
    Commands-style file name (``<speaker>_nohash_<n>``), else it is unknown."""
    accent_column: str = "accent"
    """Metadata column with each file's accent (for ``partition.kind = "accent"``); without it
    the accent is unknown."""

    @property
    def root(self) -> Path:
        return Path(self.path).expanduser().resolve()

    def check_local_copy(self) -> None:
        """ScenarioError unless ``path`` is a directory with a train and a test split."""
        _check_directory(self.path, "point it at your audiofolder")
        try:
            split_dirs(self.root)
        except ValueError as error:
            raise ScenarioError(f"key 'data': {error}") from None

    def cache_key(self) -> str:
        return short_hash(
            {
                "loader": AUDIOFOLDER_LOADER_VERSION,
                **self.model_dump(mode="json", include=set(AudioFolderSettings.model_fields)),
                "path": str(self.root),
                "files": folder_fingerprint(str(self.root)),
            }
        )


def _check_directory(path: str, hint: str) -> None:
    if not Path(path).expanduser().is_dir():
        raise ScenarioError(f"key 'data.path': no such directory: {path} ({hint})")
