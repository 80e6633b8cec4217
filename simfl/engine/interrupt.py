"""Interruptions: a signal stops a run at the end of a round, never in the middle of one.

SIGINT (Ctrl-C), SIGTERM (a cluster's preemption or time limit) and SIGUSR1 (SLURM's warning
before the time limit, ``--signal=B:USR1@<grace>``) ask the run to stop. The round loop
finishes the round it is in, checkpoints it and ends; a round still running
``resources.stop_grace_s`` after the signal is abandoned (the run resumes from the last
checkpoint), and a second signal abandons it at once. Before the rounds begin (data
preparation, Ray's start) and after they end, a signal stops the process where it is: nothing
of the run is half-written then (every write is atomic).

Why not Python's default: SIGINT raises ``KeyboardInterrupt`` in the main thread only, while
Flower's engine runs the ServerApp in a thread of its own that nothing stops, so the process
would print Ray's tracebacks and then hang; SIGTERM's default kills the process with no checkpoint
of the round it was in.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from simfl.errors import SimflError

#: The signals that stop a run, and the exit code each gives (128 + the signal's number).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


def exit_code(signum: int) -> int:
    return 128 + signum


class RunInterrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """A signal stopped the run; ``line`` is what the command line prints. A BaseException, as
    ``KeyboardInterrupt`` is: code that handles errors (a sweep's failed cell) must not take an
    interruption for one."""

    def __init__(self, signum: int, line: str | None = None, where: str | None = None) -> None:
        self.signum = signum
        self.where = where or "before the first round"
        self.line = line or f"interrupted ({signal.Signals(signum).name}) {self.where}"
        super().__init__(self.line)

    @classmethod
    def after_round(
        cls, signum: int, run_dir: Path, last_round: int, checkpointed: int
    ) -> RunInterrupted:
        """Stopped after ``last_round``; the run resumes after ``checkpointed`` (the same round,
        unless a round was abandoned while the last ones had no checkpoint of their own:
        ``tracking.checkpoint_every`` > 1)."""
        where = f"after round {last_round}" if last_round else "before the first round"
        if 0 < checkpointed < last_round:
            where += f" (resumes from round {checkpointed}'s checkpoint)"
        elif checkpointed < last_round:
            where += " (no checkpoint: resumes from the start)"
        return cls(signum, f"interrupted {where}: resume with simfl run --resume {run_dir}", where)

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)


class RoundAbandoned(SimflError):
    """The round loop gave up a round after a stop signal (its grace period passed, or a
    second signal came); the run resumes from the last checkpoint."""

    def __init__(self, server_round: int) -> None:
        self.server_round = server_round
        super().__init__(f"round {server_round} abandoned after a stop signal")


class Interruption:
    """Whether a stop was asked for, and since when. Signal handlers set it from the main
    thread; the round loop reads it from the ServerApp's thread."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._asked_at: float | None = None
        self._at_once = threading.Event()
        self._deferring = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def handle(self, signum: int, frame: object = None) -> None:
        """A stop signal: the first asks the rounds to stop, a second abandons the round at
        once. Outside the rounds it stops the main thread where it is."""
        if self.signum is None:
            self.signum, self._asked_at = signum, time.monotonic()
        else:
            self._at_once.set()
        if not self._deferring:
            raise RunInterrupted(self.signum)

    def abandons_round(self, grace_s: float) -> bool:
        """Whether the round in progress is to be abandoned now."""
        if self._at_once.is_set():
            return True
        return self._asked_at is not None and time.monotonic() - self._asked_at >= grace_s

    @contextlib.contextmanager
    def simulating(self) -> Iterator[None]:
        """While the simulation runs (its ServerApp in a thread of its own), a signal only asks
        the round loop to stop: the loop looks between rounds and while it waits for replies.
        After the block the caller looks at :attr:`requested`."""
        saved, self._deferring = self._deferring, True
        try:
            yield
        finally:
            self._deferring = saved

    @contextlib.contextmanager
    def uncut(self) -> Iterator[None]:
        """A step that must not be cut in the middle (a sweep cell's lease taken or released,
        its DONE marker): a signal in it stops the process once the step is over."""
        with self.simulating():
            yield
        if self.requested and not self._deferring:
            raise RunInterrupted(self.signum or signal.SIGTERM)

    def reason(self) -> str:
        """The stop reason a round loop reports for this interruption."""
        return f"interrupted by {signal.Signals(self.signum or signal.SIGTERM).name}"

    @contextlib.contextmanager
    def handling_signals(self) -> Iterator[None]:
        """This object handles the stop signals for the block (main thread only; elsewhere
        the signals keep their handlers); the previous handlers after it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        saved = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.handle)
        try:
            yield
        finally:
            for signum, handler in saved.items():
                signal.signal(signum, handler)
