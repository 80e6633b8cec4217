"""The one module that calls Flower's simulation engine and Ray.

``flwr.simulation.run_simulation`` is deprecated in Flower 1.42 in favour of ``flwr run``;
keeping every call here makes switching a one-file change.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

from simfl.config import ResourcesConfig
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


class ActorPools:
    """Flower's ClientApp actor pools, kept alive across the simulations of one Ray session.

    Flower's ``RayBackend`` builds a pool of actors for every ``run_simulation`` and, when the
    run ends, kills them and shuts Ray down, so each sweep cell would pay Ray's and the actors'
    start-up again. simfl's backend takes its pool from here instead: a pool is built once per
    ``client_resources`` and reused by every later simulation with the same resources (actors
    hold no run state: each call brings its ClientApp, and simfl's worker cache is keyed by the
    run plan). A pool whose actors do not answer is rebuilt.
    """

    def __init__(self) -> None:
        self._pools: dict[str, Any] = {}

    def get(self, client_resources: dict[str, Any], actor_kwargs: dict[str, Any]) -> Any:
        from flwr.simulation.ray_transport.ray_actor import BasicActorPool, ClientAppActor

        key = json.dumps([client_resources, actor_kwargs], sort_keys=True, default=str)
        pool = self._pools.get(key)
        if pool is not None and not _responsive(pool):
            pool.terminate_all_actors()
            pool = None
        if pool is None:
            pool = BasicActorPool(ClientAppActor, client_resources, actor_kwargs)
            pool.add_actors_to_pool(pool.actors_capacity)
            self._pools[key] = pool
        return pool

    def close(self) -> None:
        for pool in self._pools.values():
            pool.terminate_all_actors()
        self._pools.clear()


def _responsive(pool: Any, timeout_s: float = 30.0) -> bool:
    """Whether every actor is idle in the pool and answers (a crashed actor would not)."""
    import ray

    if len(pool.pool) != pool.num_actors:
        return False
    try:
        ray.get([actor.__ray_ready__.remote() for actor in pool.pool], timeout=timeout_s)
    except Exception:  # noqa: BLE001 - any failure means: build a fresh pool
        return False
    return True


@dataclass
class RaySession:
    """A Ray runtime in use by simfl: its resources and the actor pools built on it."""

    resources: dict[str, float]
    pools: ActorPools = field(default_factory=ActorPools)


@contextlib.contextmanager
def ray_session(
    address: str | None, init_args: dict[str, Any], verbose: bool = False
) -> Iterator[RaySession]:
    """Start Ray once (or join the cluster at ``address``) for several simulations.

    Every :func:`simulate` given this session reuses its runtime and its actor pools instead
    of paying Ray's and the actors' start-up again. Shuts down only what it started: a joined
    cluster and its processes are left alone (``ray.shutdown`` disconnects this driver, it
    stops no daemon that another process started).
    """
    import ray

    prepare_environment()
    started = not ray.is_initialized()
    if started:
        pythonpath = os.pathsep.join(sys.path)
        kwargs: dict[str, Any] = {
            "runtime_env": {"env_vars": {"PYTHONPATH": pythonpath}},
            "logging_level": logging.INFO if verbose else logging.ERROR,
            "log_to_driver": verbose,
        }
        if address:
            kwargs["address"] = address
        else:
            kwargs.update({"include_dashboard": False, **init_args})
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise SimflError(
                f"could not start or join Ray (address={address!r}): {error}"
            ) from None
    session = RaySession(dict(ray.cluster_resources()))
    try:
        yield session
    finally:
        session.pools.close()
        if started and ray.is_initialized():
            ray.shutdown()


@contextlib.contextmanager
def _session_backend(session: RaySession) -> Iterator[None]:
    """Make Flower's simulation engine use ``session``'s actor pools and leave Ray running.

    Flower's engine instantiates ``raybackend.RayBackend`` by name inside ``start_vce``; it
    offers no way to pass a backend in, so the name is pointed at a subclass for this call.
    """
    from flwr.server.superlink.fleet.vce.backend import raybackend

    flower_backend = raybackend.RayBackend

    class SessionRayBackend(flower_backend):  # type: ignore[misc, valid-type]
        def build(self, app_fn: Any) -> None:
            self.pool = session.pools.get(self.client_resources, self.actor_kwargs)
            self.app_fn = app_fn

        def terminate(self) -> None:  # the session owns Ray and the actors
            pass

    raybackend.RayBackend = SessionRayBackend
    try:
        yield
    finally:
        raybackend.RayBackend = flower_backend


def client_concurrency(cluster: dict[str, float], resources: ResourcesConfig) -> int:
    """How many clients Flower's actor pool runs at once with these ``client_resources``."""
    slots = int(cluster.get("CPU", 0.0) // resources.num_cpus)
    if resources.num_gpus > 0:
        slots = min(slots, int(cluster.get("GPU", 0.0) // resources.num_gpus))
    return slots


def simulate(
    server_app: ServerApp,
    client_app: ClientApp,
    num_clients: int,
    resources: ResourcesConfig,
    verbose: bool = False,
    session: RaySession | None = None,
) -> int:
    """Run the apps on Flower's Ray backend; re-raise what the ServerApp raised.

    Runs on ``session`` (a sweep's runtime and actors) or, without one, on a session of its
    own for this call. Returns the number of clients that ran concurrently.
    """
    if session is None:
        with ray_session(None, resources.ray_init, verbose) as own:
            return simulate(server_app, client_app, num_clients, resources, verbose, own)
    from flwr.simulation import run_simulation

    # Flower logs every client failure with a traceback; simfl reports them itself, once.
    logging.getLogger("flwr").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    concurrency = client_concurrency(session.resources, resources)
    if concurrency < 1:
        cluster = session.resources
        raise SimflError(
            f"key 'resources': no client fits the Ray cluster ({cluster.get('CPU', 0)} CPUs, "
            f"{cluster.get('GPU', 0)} GPUs) with num_cpus={resources.num_cpus}, "
            f"num_gpus={resources.num_gpus} per client"
        )
    try:
        with warnings.catch_warnings(), _session_backend(session):
            warnings.simplefilter("ignore")
            run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=num_clients,
                backend_config=backend_config(resources, verbose),
                verbose_logging=verbose,
            )
    except RuntimeError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, SimflError):
            raise cause from None
        raise
    return concurrency
