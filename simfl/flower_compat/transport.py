"""Flower's simulation engine run on a session's Ray runtime, with its waits made prompt.

Flower 1.42's ``run_simulation`` builds a fresh actor pool per run, shuts Ray down after it,
caps its worker threads at Python's default, and lets its engine threads wait up to a second
before they notice the run has ended. A sweep runs hundreds of simulations in one process, so
:func:`run_flower_simulation` patches those points for the length of one run.

Assumptions (contract-tested in ``test_transport.py``):

- ``run-simulation-runs-both-apps-in-process``: ``flwr.simulation.run_simulation(server_app,
  client_app, num_supernodes, backend_config, verbose_logging)`` runs both apps in this
  process and raises ``RuntimeError`` from the ServerApp's exception.
- ``engine-looks-up-ray-backend-by-name``: ``start_vce`` imports ``raybackend.RayBackend``
  when it starts, by name, so pointing the module attribute at a subclass makes the engine use
  it (:func:`session_backend`).
- ``ray-backend-keeps-pool-and-settings``: ``RayBackend`` keeps its pool in ``self.pool`` and
  its settings in ``client_resources`` and ``actor_kwargs``; ``build(app_fn)`` makes the pool
  (and sets ``self.app_fn``) and ``terminate()`` kills it and shuts Ray down.
- ``engine-runs-one-thread-per-actor-in-a-default-pool``: ``vce_api.run_api`` runs one worker
  thread per actor (``backend.num_workers``) in a ``ThreadPoolExecutor()`` it looks up by that
  module-level name, so Python's default cap of ``min(32, cpu_count + 4)`` threads silently
  limits how many clients run at once (6 on a 2-core machine, 20 on a 16-CPU SLURM task)
  whatever the actor pool's size (:func:`one_thread_per_actor`).
- ``engine-threads-wait-a-second-on-their-queues``: ``vce_api.run_api`` makes its two message
  queues with the module-level name ``Queue``; its worker threads and its reply storer wait on
  them with ``get(timeout=1.0)`` and look at ``f_stop`` only between waits, so a simulation
  would return 0.5 s after its ServerApp ended on average (up to 1 s): in a sweep, every cell
  would pay it (:func:`prompt_stop` caps that wait).

The message and reply wake-ups that also patch the engine for a run are in
:mod:`simfl.flower_compat.wakeups`; the actor pools the session backend hands out are in
:mod:`simfl.flower_compat.actors`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

from simfl.errors import SimflError
from simfl.flower_compat.actors import ActorDied, run_message
from simfl.flower_compat.patching import replaced
from simfl.flower_compat.wakeups import messages_moved_when_pushed, replies_wake_the_server

if TYPE_CHECKING:
    from simfl.engine.runtime import RaySession

#: Worker threads Flower's engine may start: one per actor, and actors are bounded by Ray's
#: resources, so this only lifts Python's default cap.
MAX_WORKER_THREADS = 4096
#: The longest Flower's engine threads wait for a message before they look at their stop
#: event again (Flower waits 1 s). Ten looks a second per thread cost nothing.
STOP_POLL_S = 0.1


class ThreadPerActor(ThreadPoolExecutor):
    """Flower's ``ThreadPoolExecutor()`` without the ``min(32, cpu_count + 4)`` default cap.

    Threads are started lazily, one per submitted task, and Flower submits one per actor.
    """

    def __init__(self, max_workers: int | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(max_workers or MAX_WORKER_THREADS, *args, **kwargs)


class PromptStopQueue(queue.Queue):
    """Flower's message queues, whose timed ``get`` waits at most :data:`STOP_POLL_S`: the
    caller loops and checks its stop event between waits."""

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if block and timeout is not None:
            timeout = min(timeout, STOP_POLL_S)
        return super().get(block, timeout)


def prompt_stop() -> contextlib.AbstractContextManager[None]:
    """End the engine's threads within :data:`STOP_POLL_S` of the ServerApp
    (``engine-threads-wait-a-second-on-their-queues``)."""
    from flwr.server.superlink.fleet.vce import vce_api

    return replaced([(vce_api, "Queue", PromptStopQueue)])


def one_thread_per_actor() -> contextlib.AbstractContextManager[None]:
    """Let every actor of the pool run a client at once
    (``engine-runs-one-thread-per-actor-in-a-default-pool``)."""
    from flwr.server.superlink.fleet.vce import vce_api

    return replaced([(vce_api, "ThreadPoolExecutor", ThreadPerActor)])


def never_rerun(partition: int, cause: str) -> bool:
    """Flower's own behaviour: a message whose actor died fails."""
    return False


@contextlib.contextmanager
def session_backend(session: RaySession, actor_died: ActorDied = never_rerun) -> Iterator[None]:
    """Make Flower's engine use ``session``'s actor pools and leave Ray running
    (``engine-looks-up-ray-backend-by-name``, ``ray-backend-keeps-pool-and-settings``); a
    client actor that dies is replaced, and its message rerun while ``actor_died`` allows
    (:func:`~simfl.flower_compat.actors.run_message`)."""
    from flwr.common.constant import PARTITION_ID_KEY
    from flwr.server.superlink.fleet.vce.backend import raybackend

    flower_backend = raybackend.RayBackend

    class SessionRayBackend(flower_backend):  # type: ignore[misc, valid-type]
        def build(self, app_fn: Any) -> None:
            self.pool = session.pools.get(self.client_resources, self.actor_kwargs)
            self.app_fn = app_fn

        def process_message(self, message: Any, context: Any) -> tuple[Any, Any]:
            job = (self.app_fn, message, str(context.node_config[PARTITION_ID_KEY]), context)
            return run_message(session.pools, self.pool, job, actor_died)

        def terminate(self) -> None:  # the session owns Ray and the actors
            pass

    raybackend.RayBackend = SessionRayBackend
    try:
        yield
    finally:
        raybackend.RayBackend = flower_backend


@contextlib.contextmanager
def flower_log_level(level: int) -> Iterator[None]:
    """Set the ``flwr`` logger's level for one simulation and restore it afterwards."""
    logger = logging.getLogger("flwr")
    saved = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(saved)


def run_flower_simulation(
    server_app: ServerApp,
    client_app: ClientApp,
    num_clients: int,
    backend_config: dict[str, Any],
    session: RaySession,
    verbose: bool = False,
    actor_died: ActorDied = never_rerun,
) -> None:
    """Flower's ``run_simulation`` on ``session``'s Ray runtime and actors
    (``run-simulation-runs-both-apps-in-process``); ``actor_died`` decides whether a message
    whose client actor died runs again (on a replacement actor).

    Flower logs every client failure with a traceback; simfl reports them itself, once, so the
    ``flwr`` logger is quiet unless ``verbose``. Re-raises what the ServerApp raised.
    """
    from flwr.simulation import run_simulation

    level = logging.DEBUG if verbose else logging.CRITICAL
    try:
        with (
            warnings.catch_warnings(),
            session_backend(session, actor_died),
            one_thread_per_actor(),
            messages_moved_when_pushed(),
            replies_wake_the_server(),
            prompt_stop(),
            flower_log_level(level),
        ):
            warnings.simplefilter("ignore")  # run_simulation is deprecated in 1.42
            run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=num_clients,
                backend_config=backend_config,
                verbose_logging=verbose,
            )
    except RuntimeError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, SimflError):  # Flower wraps what the ServerApp raised
            raise cause from None
        raise
