"""Starting Ray (or joining a cluster), optionally in the background.

Ray's start takes seconds (its daemons are processes that import a good part of Ray each), and
so does importing torch and Flower; neither needs the other. :class:`RayStart` with
``background=True`` runs ``ray.init`` in a thread of its own while the caller imports and
prepares, and :meth:`RayStart.wait` blocks only when the runtime is needed.

The thread stays alive until :meth:`RayStart.close`: Ray starts its daemons with
``PR_SET_PDEATHSIG``, which Linux ties to the *thread* that forked them, so a thread that ended
after ``ray.init`` would take GCS and the raylet with it.

Imports only the standard library at module level (Ray when a start begins), so a caller can
begin the start before it imports torch or Flower.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from simfl.errors import SimflError

QUIET_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "RAY_DEDUP_LOGS": "0",
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
}


def prepare_environment() -> None:
    """Telemetry off and quieter Ray, unless the user set these variables already."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


class RayStart:
    """``ray.init`` for ``address`` (None: a local runtime of its own, never a cluster that
    ``ray start`` left on this machine) with ``init_args``, unless Ray is running already.

    ``started`` says whether this start brought Ray up (and :meth:`close` shuts it down); it
    is False when the process was already connected. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self,
        address: str | None,
        init_args: dict[str, Any],
        verbose: bool = False,
        background: bool = False,
    ) -> None:
        self.address, self.init_args, self.verbose = address, dict(init_args), verbose
        self.started = False
        self._error: BaseException | None = None
        self._ready, self._release = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        # Imported here, not in the thread: what the caller imports meanwhile (Flower) then finds
        # Ray complete, and the two threads never import Ray's modules at the same time.
        import ray

        prepare_environment()
        if ray.is_initialized():
            self._ready.set()
            return
        if not background:
            self._start()
            return
        _exit_on_sigterm()  # what ray.init does when it runs in the main thread
        self._thread = threading.Thread(target=self._own, name="simfl-ray-start", daemon=True)
        self._thread.start()

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}},
            "logging_level": logging.INFO if self.verbose else logging.ERROR,
            "log_to_driver": self.verbose,
        }
        if self.address:
            kwargs["address"] = self.address
        else:  # "local": never join a cluster that `ray start` left on this machine unasked
            kwargs.update({"address": "local", "include_dashboard": False, **self.init_args})
        return kwargs

    def _start(self) -> None:
        try:
            import ray

            with _sigterm_handler_kept():
                ray.init(**self._kwargs())  # sys.path read now: importing Ray extended it
            self.started = True
            if not self.address:
                _stop_unused_daemons(self.verbose)
        except BaseException as error:  # noqa: BLE001 - handed to the thread that waits
            self._error = error
        finally:
            self._ready.set()

    def _own(self) -> None:
        self._start()
        self._release.wait()  # Ray's daemons die with the thread that started them

    def wait(self) -> None:
        """Block until Ray is up; raise what stopped it."""
        self._ready.wait()
        error = self._error
        if error is None:
            return
        if isinstance(error, Exception):  # Ray's own errors are plain Exceptions at times
            raise SimflError(
                f"could not start or join Ray (address={self.address!r}): {error}"
            ) from None
        raise error

    def close(self) -> None:
        """Shut Ray down if this start brought it up (after it is up, if it is still starting);
        then let the owning thread end. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._ready.wait()
        try:
            if self.started:
                import ray

                if ray.is_initialized():
                    ray.shutdown()
        finally:
            self._release.set()
            if self._thread is not None:
                self._thread.join()

    def __enter__(self) -> RayStart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: What a local runtime of simfl's own never uses (Ray 2.55 starts them all, and ``ray.init``
#: has no switch for them): the autoscaler monitor (a single machine does not scale), the
#: dashboard's API server (jobs and state API; the dashboard itself is off) and, unless output
#: is shown, the log monitor that forwards workers' output to the driver. Each is a process
#: of its own, with its memory, for nothing.
UNUSED_DAEMONS = ("monitor", "dashboard")


def _stop_unused_daemons(verbose: bool) -> None:
    """Stop the daemons of :data:`UNUSED_DAEMONS` (and the log monitor unless ``verbose``) of
    a local runtime just started, through Ray's private node object (``kill_<name>``,
    checked in tests/test_ray_start.py); where that is missing, they keep running.

    Also a second off every shutdown: Ray 2.55 stops GCS first and then sends the monitor
    SIGTERM, whose handler reports to the GCS that is gone, so ``ray.shutdown`` would wait out
    a one-second grace and kill it anyway."""
    names = [*UNUSED_DAEMONS, *([] if verbose else ["log_monitor"])]
    try:
        from ray._private import worker

        node = worker._global_node
        if node is None:
            return
        kill = {
            "monitor": node.kill_monitor,
            "dashboard": node.kill_dashboard,
            "log_monitor": node.kill_log_monitor,
        }
        for name in names:
            if name in node.all_processes:
                kill[name](check_alive=False)
    except Exception:  # noqa: BLE001 - memory only: the run works with them alive
        pass


def _exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit, as ``ray.init`` arranges when it runs in the main thread (so
    ``finally`` blocks run: a cell is marked failed, Ray is shut down), unless the process
    already handles SIGTERM (a run's interruption, :mod:`simfl.engine.interrupt`). Only the main
    thread can set a handler; elsewhere the default stays, as with ``ray.init`` in that thread."""
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))


@contextlib.contextmanager
def _sigterm_handler_kept() -> Iterator[None]:
    """``ray.init`` in the main thread replaces SIGTERM's handler with one that exits; a
    handler the process had set (a run's interruption) is put back after it, the default is
    left to Ray's."""
    in_main = threading.current_thread() is threading.main_thread()
    saved = signal.getsignal(signal.SIGTERM) if in_main else None
    try:
        yield
    finally:
        if in_main and saved not in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, saved)
