"""The errors simfl turns into one clear message and a non-zero exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


class SimflError(Exception):
    """Base of every error simfl reports to the user without a traceback."""

    exit_code = 1


class ScenarioError(SimflError):
    """Bad input: a scenario file, an override or a CLI flag. Nothing has been written yet."""

    exit_code = 2


class ClientFailuresError(SimflError):
    """A round had fewer successful clients than the strategy needs (Flower only logs this)."""

    def __init__(self, round_number: int, succeeded: int, required: int, first_failure: str):
        self.round_number = round_number
        self.first_failure = first_failure
        super().__init__(
            f"round {round_number}: only {succeeded} client(s) succeeded, "
            f"{required} required (strategy.min_train_nodes). First client failure:\n"
            f"{first_failure}"
        )


@contextlib.contextmanager
def blamed_on(path: Path) -> Iterator[None]:
    """Name the scenario file in a ScenarioError raised once data is known (e.g. min_size).

    Schema errors already start with the file name; checks that need the dataset run later,
    far from the file, so the command that loaded the file adds it here.
    """
    try:
        yield
    except ScenarioError as error:
        if str(error).startswith(path.name):
            raise
        raise ScenarioError(f"{path.name}: {error}") from error
