"""The errors simfl turns into one clear message and a non-zero exit code."""

from __future__ import annotations


class SimflError(Exception):
    """Base of every error simfl reports to the user without a traceback."""

    exit_code = 1


class ScenarioError(SimflError):
    """Bad input: a scenario file, an override or a CLI flag. Nothing has been written yet.

    Carries the dotted scenario key at fault and the file it came from, so that a check made
    far from the file (during data preparation, say) still prints
    ``<file>: key '<key>': <what is wrong and what is allowed>``.
    """

    exit_code = 2

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None):
        self.message, self.key, self.source = message, key, source
        super().__init__(self.render())

    def render(self) -> str:
        text = f"key '{self.key}': {self.message}" if self.key else self.message
        return f"{self.source}: {text}" if self.source else text

    def __str__(self) -> str:
        return self.render()

    def with_source(self, source: str | None) -> ScenarioError:
        """The same error naming ``source``, unless it already names a file."""
        if self.source or not source:
            return self
        return ScenarioError(self.message, key=self.key, source=source)


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


class RecorderError(SimflError):
    """A recorder callback could not set up or write (W&B login, unwritable or full disk).

    Exit code 2: like bad input, the user has to fix something before rerunning.
    """

    exit_code = 2

    def __init__(self, what: str, error: BaseException):
        self.what = what
        super().__init__(f"{what}: {describe_os_error(error)}")


def describe_os_error(error: BaseException) -> str:
    """One line for an error: ``<file>: <strerror>`` for OS errors, else the first line."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
