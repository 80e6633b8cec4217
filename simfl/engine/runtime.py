"""The one module that calls Flower's simulation engine and Ray.

``flwr.simulation.run_simulation`` is deprecated in Flower 1.42 in favour of ``flwr run``;
keeping every call here makes switching a one-file change.
"""

from __future__ import annotations

import logging
import os
import warnings
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


def simulate(
    server_app: ServerApp,
    client_app: ClientApp,
    num_clients: int,
    resources: ResourcesConfig,
    verbose: bool = False,
) -> None:
    """Run the apps on Flower's Ray backend; re-raise what the ServerApp raised.

    Ray is shut down afterwards only if this call started it (a sweep or a user may share one).
    """
    import ray
    from flwr.simulation import run_simulation

    prepare_environment()
    started_ray = not ray.is_initialized()
    # Flower logs every client failure with a traceback; simfl reports them itself, once.
    logging.getLogger("flwr").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
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
    except SimflError:
        raise
    except RuntimeError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, SimflError):
            raise cause from None
        raise
    finally:
        if started_ray and ray.is_initialized():
            ray.shutdown()
