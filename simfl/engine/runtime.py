"""The one module that calls Flower's simulation engine and Ray.

``flwr.simulation.run_simulation`` is deprecated in Flower 1.42 in favour of ``flwr run``;
keeping every call here makes switching a one-file change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
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


@contextlib.contextmanager
def ray_session(
    address: str | None, init_args: dict[str, Any], verbose: bool = False
) -> Iterator[dict[str, float]]:
    """Start Ray once (or join the cluster at ``address``) for several simulations.

    Every :func:`simulate` inside reuses this runtime instead of paying Ray's start-up again.
    Yields the cluster's resources. Shuts down only what it started: a joined cluster and its
    processes are left alone (``ray.shutdown`` disconnects this driver, it stops no daemon that
    another process started).
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
    try:
        yield dict(ray.cluster_resources())
    finally:
        if started and ray.is_initialized():
            ray.shutdown()


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
) -> int:
    """Run the apps on Flower's Ray backend; re-raise what the ServerApp raised.

    Uses the Ray runtime already running (a sweep's, a user's) or starts one for this call.
    Returns the number of clients that ran concurrently.
    """
    from flwr.simulation import run_simulation

    # Flower logs every client failure with a traceback; simfl reports them itself, once.
    logging.getLogger("flwr").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    with ray_session(None, resources.ray_init, verbose) as cluster:
        concurrency = client_concurrency(cluster, resources)
        if concurrency < 1:
            raise SimflError(
                f"key 'resources': no client fits the Ray cluster ({cluster.get('CPU', 0)} CPUs, "
                f"{cluster.get('GPU', 0)} GPUs) with num_cpus={resources.num_cpus}, "
                f"num_gpus={resources.num_gpus} per client"
            )
        try:
            with warnings.catch_warnings():
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
