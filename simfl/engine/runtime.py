"""Ray for simfl: one runtime (started or joined) shared by the simulations of a process.

The Flower side of a simulation (engine entry, backend, actor pools) is in
:mod:`simfl.flower_compat.transport` and :mod:`simfl.flower_compat.actors`; this module owns
Ray's lifetime and resources.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

from simfl.engine.concurrency import calls_per_exchange, client_concurrency, evaluation_overlap
from simfl.engine.ray_start import RayStart
from simfl.errors import SimflError
from simfl.flower_compat.actors import ActorDied, ActorPools
from simfl.flower_compat.transport import never_rerun, run_flower_simulation
from simfl.schema.sections import ResourcesConfig


def backend_config(resources: ResourcesConfig, verbose: bool = False) -> dict[str, Any]:
    """Flower's backend config; actor output reaches the terminal only when ``verbose``.

    Client failures still arrive in full: the ClientApp sends its traceback in the reply.
    """
    init_args = {
        "include_dashboard": False,
        "logging_level": logging.INFO if verbose else logging.ERROR,
        "log_to_driver": verbose,
        **resources.ray_init,
    }
    return {
        "client_resources": {"num_cpus": resources.num_cpus, "num_gpus": resources.num_gpus},
        "init_args": init_args,
    }


@dataclass
class RaySession:
    """A Ray runtime in use by simfl: its resources and the actor pools built on it."""

    resources: dict[str, float]
    pools: ActorPools = field(default_factory=ActorPools)
    joined: bool = False  # a running cluster (its GPUs may be on other machines than this one)


#: The session that holds this process's Ray runtime, while one is open. Ray itself is
#: process-wide, and so are the actors a session's pools hold: a second session on the same
#: runtime would build a second pool that waits forever for the CPUs the first one holds.
_OPEN_SESSIONS: list[RaySession] = []


@contextlib.contextmanager
def ray_session(
    address: str | None,
    init_args: dict[str, Any],
    verbose: bool = False,
    start: RayStart | None = None,
) -> Iterator[RaySession]:
    """Start Ray once (or join the cluster at ``address``) for several simulations.

    Every :func:`simulate` given this session reuses its runtime and its actor pools instead
    of paying Ray's and the actors' start-up again. Shuts down only what it started: a joined
    cluster and its processes are left alone (``ray.shutdown`` disconnects this driver, it
    stops no daemon that another process started). Opened while another session of this
    process is open, it is that session (its pools keep the runtime's CPUs and GPUs).
    ``start`` is a start already under way (begun in the background, see
    :class:`~simfl.engine.ray_start.RayStart`, for the same ``address`` and ``init_args``);
    the session takes it over and closes it.
    """
    import ray

    if start is None and ray.is_initialized() and _OPEN_SESSIONS:  # Ray is per process:
        yield _OPEN_SESSIONS[-1]  # so are its actors
        return
    with start or RayStart(address, init_args, verbose) as ray_start:
        ray_start.wait()
        if not ray_start.started and _OPEN_SESSIONS:  # a background start found Ray running
            yield _OPEN_SESSIONS[-1]
            return
        session = RaySession(dict(ray.cluster_resources()), joined=bool(address))
        _OPEN_SESSIONS.append(session)
        try:
            yield session
        finally:
            _OPEN_SESSIONS.remove(session)
            session.pools.close()


def simulate(
    server_app: ServerApp,
    client_app: ClientApp,
    num_nodes: int,
    resources: ResourcesConfig,
    verbose: bool = False,
    session: RaySession | None = None,
    actor_died: ActorDied = never_rerun,
) -> int:
    """Run the apps on Flower's Ray backend; re-raise what the ServerApp raised.

    Runs on ``session`` (a sweep's runtime and actors) or, without one, on a session of its
    own for this call. A client actor that dies is replaced, and its message runs again while
    ``actor_died`` (:meth:`~simfl.engine.actor_restarts.ActorRestarts.actor_died`) allows.
    Returns the number of clients that ran concurrently.
    """
    if session is None:
        with ray_session(None, resources.ray_init, verbose) as own:
            return simulate(server_app, client_app, num_nodes, resources, verbose, own, actor_died)
    concurrency = client_concurrency(session.resources, resources)
    if concurrency < 1:
        cluster = session.resources
        raise SimflError(
            f"key 'resources': no client fits the Ray cluster ({cluster.get('CPU', 0)} CPUs, "
            f"{cluster.get('GPU', 0)} GPUs) with num_cpus={resources.num_cpus}, "
            f"num_gpus={resources.num_gpus} per client"
        )
    run_flower_simulation(
        server_app,
        client_app,
        num_nodes,
        backend_config(resources, verbose),
        session,
        verbose,
        actor_died,
    )
    return concurrency


def calls_per_exchange_here(resources: ResourcesConfig) -> Callable[[int], int]:
    """``calls_per_exchange`` for the actors Flower's pool runs on the Ray runtime this process
    is connected to (none when it is not: one call per client, as with a test's grid)."""
    ray = _connected_ray()
    actors = client_concurrency(dict(ray.cluster_resources()), resources) if ray else 0
    return lambda cohort: calls_per_exchange(cohort, resources, actors)


def evaluation_overlap_here(resources: ResourcesConfig) -> str:
    """:func:`evaluation_overlap` for this process's machine: its cores (as this process may
    use them: a SLURM task's share) less those the actors that Ray fits on it take."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere: every core
    cores = float(len(affinity(0)) if affinity else os.cpu_count() or 1)
    if (ray := _connected_ray()) is not None:
        here = ray.get_runtime_context().get_node_id()
        node = next((n for n in ray.nodes() if n.get("NodeID") == here), {})
        actors = client_concurrency(dict(node.get("Resources", {})), resources)
        cores -= actors * resources.num_cpus
    return evaluation_overlap(resources.evaluation_overlap, cores, resources.num_gpus > 0)


def _connected_ray() -> Any:
    """Ray, if this process is connected to a runtime (never imported here for the asking)."""
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None
