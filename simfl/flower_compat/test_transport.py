"""Contract tests for :mod:`simfl.flower_compat.transport`, one per named assumption."""

from __future__ import annotations

import inspect
import logging
import queue
import time

import pytest

from simfl.flower_compat import transport


def test_run_simulation_runs_both_apps_in_process() -> None:
    from flwr.simulation import run_simulation

    params = inspect.signature(run_simulation).parameters
    for name in ("server_app", "client_app", "num_supernodes", "backend_config", "verbose_logging"):
        assert name in params, (
            f"run-simulation-runs-both-apps-in-process: run_simulation lost its {name!r} argument"
        )


def test_engine_looks_up_ray_backend_by_name() -> None:
    from flwr.server.superlink.fleet.vce import vce_api

    source = inspect.getsource(vce_api.start_vce)
    assert "from .backend.raybackend import RayBackend" in source, (
        "engine-looks-up-ray-backend-by-name: start_vce no longer imports raybackend.RayBackend "
        "when it starts, so simfl's session backend (actor reuse across sweep cells) would be "
        "ignored"
    )


def test_ray_backend_keeps_pool_and_settings() -> None:
    from flwr.server.superlink.fleet.vce.backend.raybackend import RayBackend

    name = "ray-backend-keeps-pool-and-settings"
    for method in ("build", "terminate"):
        assert callable(getattr(RayBackend, method, None)), f"{name}: RayBackend.{method}"
    build = inspect.getsource(RayBackend.build)
    assert "self.pool" in build and "self.app_fn" in build, (
        f"{name}: RayBackend.build no longer sets self.pool / self.app_fn"
    )
    init = inspect.getsource(RayBackend.__init__)
    for attribute in ("self.client_resources", "self.actor_kwargs"):
        assert attribute in init, f"{name}: RayBackend.__init__ no longer sets {attribute}"
    assert "ray.shutdown()" in inspect.getsource(RayBackend.terminate), (
        f"{name}: RayBackend.terminate no longer shuts Ray down (simfl overrides it to keep a "
        "sweep's runtime alive)"
    )


def test_engine_runs_one_thread_per_actor_in_a_default_pool() -> None:
    from flwr.server.superlink.fleet.vce import vce_api

    name = "engine-runs-one-thread-per-actor-in-a-default-pool"
    source = inspect.getsource(vce_api.run_api)
    assert "with ThreadPoolExecutor() as executor" in source, (
        f"{name}: run_api no longer makes its worker threads in a default ThreadPoolExecutor(); "
        "simfl's lift of the min(32, cpu_count + 4) cap may be moot"
    )
    assert "for _ in range(backend.num_workers)" in source, (
        f"{name}: run_api no longer starts one worker per actor"
    )
    assert vce_api.ThreadPoolExecutor is transport.ThreadPoolExecutor  # restored
    with transport.one_thread_per_actor():
        executor = vce_api.ThreadPoolExecutor()
        assert executor._max_workers == transport.MAX_WORKER_THREADS
        executor.shutdown()
    assert vce_api.ThreadPoolExecutor is transport.ThreadPoolExecutor


def test_engine_threads_wait_a_second_on_their_queues() -> None:
    from flwr.server.superlink.fleet.vce import vce_api

    name = "engine-threads-wait-a-second-on-their-queues"
    source = inspect.getsource(vce_api)
    assert source.count("get(timeout=1.0)") == 2, (
        f"{name}: Flower's engine threads no longer wait get(timeout=1.0) on its queues"
    )
    api = inspect.getsource(vce_api.run_api)
    assert api.count("= Queue()") == 2, f"{name}: run_api no longer makes its queues"
    assert vce_api.Queue is queue.Queue
    with transport.prompt_stop():
        made = vce_api.Queue()
        started = time.perf_counter()
        with pytest.raises(queue.Empty):
            made.get(timeout=1.0)
        assert time.perf_counter() - started < 0.5  # capped at STOP_POLL_S
        made.put("message")
        assert made.get(timeout=1.0) == "message"
    assert vce_api.Queue is queue.Queue


def test_flower_log_level_is_restored() -> None:
    logger = logging.getLogger("flwr")
    saved = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with transport.flower_log_level(logging.CRITICAL):
            assert logger.level == logging.CRITICAL
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(saved)
