"""The errors simfl turns into one clear message and a non-zero exit code."""

from __future__ import annotations

import errno
import os
from pathlib import Path


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
    """A recorder callback could not set up or write (W&B login, unwritable directory).

    Exit code 2: like bad input, the user has to fix something before rerunning.
    """

    exit_code = 2

    def __init__(self, what: str, error: BaseException):
        self.what = what
        super().__init__(f"{what}: {describe_os_error(error)}")


#: What to do about each errno that means "the disk is full" (ENOSPC, EDQUOT, EFBIG).
DISK_FULL = {
    errno.ENOSPC: "free space",
    errno.EDQUOT: "free space within your disk quota",
    errno.EFBIG: "raise the file-size limit (ulimit -f)",
}


class ResumableError(SimflError):
    """Something outside the run stopped it (a full disk, client actors dying) after its last
    checkpoint; it resumes, once that is fixed, with ``resume_with`` (set by whoever knows
    how: ``simfl run --resume <dir>``, or the same sweep command)."""

    resume_with: str | None = None


class ResultsWriteError(ResumableError, OSError):
    """A file could not be written because the disk, the quota or the file-size limit is full.

    One line naming the file, the errno and what to do: simfl publishes files atomically and
    removes a checkpoint only after the next one is in place, so nothing half-written is left
    and the run resumes (``resume_with``, set by whoever knows how) once there is room. Exit
    code 2, like bad input: the user has to act before rerunning. An ``OSError`` too, so code
    that copes with a failed write (a lease's heartbeat retrying it) still does.
    """

    exit_code = 2

    def __init__(self, path: Path | str, error: OSError) -> None:
        super().__init__(error.errno, os.strerror(error.errno))
        self.path = Path(path)
        self.resume_with: str | None = None

    def __str__(self) -> str:
        name = errno.errorcode.get(self.errno, "?")
        remedy = DISK_FULL.get(self.errno, "free space")
        line = f"cannot write {self.path}: [Errno {self.errno}] {self.strerror} ({name}); {remedy}"
        return f"{line} and resume with {self.resume_with}" if self.resume_with else line

    def __reduce__(self) -> tuple:
        """Picklable although ``__init__`` does not take ``OSError``'s arguments."""
        return type(self), (self.path, OSError(self.errno, self.strerror)), self.__dict__


def disk_full_cause(
    error: BaseException | None, before: BaseException | None = None
) -> OSError | None:
    """The full-disk ``OSError`` behind ``error``: itself or one it was raised from or while
    handling (torch wraps a failed write in a ``RuntimeError``), up to ``before``, the error
    already being handled when the write began (a cause of something else); None if none."""
    seen: set[int] = {id(before)} if before is not None else set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return error
        error = error.__cause__ or error.__context__
    return None


def describe_os_error(error: BaseException) -> str:
    """One line for an error: ``<file>: <strerror>`` for OS errors, else the first line."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
