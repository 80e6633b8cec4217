"""Flower's ClientApp actor pools, kept alive across the simulations of one Ray session.

Assumptions (contract-tested in ``test_actors.py``):

- ``actor-pool-kills-only-idle-actors``: ``BasicActorPool(actor_type, client_resources,
  actor_kwargs)`` (``flwr.simulation.ray_transport.ray_actor``) creates actors with
  ``self.create_actor_fn()`` in ``add_actors_to_pool``, holds the idle ones in ``pool``,
  counts ``num_actors`` and sizes itself by ``actors_capacity``; its
  ``terminate_all_actors`` kills only idle actors, so :class:`ActorPools` tracks every actor
  it creates.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any


class ActorPools:
    """Flower's ClientApp actor pools, kept alive across the simulations of one Ray session.

    Flower's ``RayBackend`` builds a pool of actors for every ``run_simulation`` and, when the
    run ends, kills them and shuts Ray down, so each sweep cell would pay Ray's and the actors'
    start-up again. A pool here is built once per ``client_resources`` and reused by every
    later simulation with the same resources (actors hold no run state: each call brings its
    ClientApp, and simfl's worker cache is keyed by the run plan). A pool whose actors do not
    answer is rebuilt, and then every actor it ever made is killed, busy ones included
    (Flower's ``terminate_all_actors`` only reaches idle ones).

    One pool lives at a time: Flower sizes a pool by the cluster's *total* resources, and its
    actors hold theirs for life, so a second pool with other resources (the next cell of a
    sweep over ``num_cpus`` or ``num_gpus``) would wait forever for CPUs or GPUs the first
    still holds. Building a pool for new resources therefore kills the previous one.
    """

    def __init__(self) -> None:
        self._pools: dict[str, Any] = {}
        self._actors: dict[str, list[Any]] = {}

    def get(self, client_resources: dict[str, Any], actor_kwargs: dict[str, Any]) -> Any:
        """The pool for these resources: the live one, or a fresh one (the previous killed)."""
        from flwr.simulation.ray_transport.ray_actor import BasicActorPool, ClientAppActor

        key = json.dumps([client_resources, actor_kwargs], sort_keys=True, default=str)
        pool = self._pools.get(key)
        if pool is not None and not responsive(pool):
            self._kill(key)
            pool = None
        if pool is None:
            self.close()  # release the previous pool's resources (see the class docstring)
            pool = BasicActorPool(ClientAppActor, client_resources, actor_kwargs)
            self._actors[key] = []
            self._track(pool, self._actors[key])
            pool.add_actors_to_pool(pool.actors_capacity)
            self._pools[key] = pool
        return pool

    @staticmethod
    def _track(pool: Any, created: list[Any]) -> None:
        """Record every actor the pool creates (Flower keeps only the idle ones)."""
        create = pool.create_actor_fn

        def create_and_track() -> Any:
            actor = create()
            created.append(actor)
            return actor

        pool.create_actor_fn = create_and_track

    def _kill(self, key: str) -> None:
        import ray

        for actor in self._actors.pop(key, []):
            with contextlib.suppress(Exception):  # already dead is fine
                ray.kill(actor)
        self._pools.pop(key, None)

    def close(self) -> None:
        """Kill every actor of every pool (busy ones included)."""
        for key in list(self._pools):
            self._kill(key)


def responsive(pool: Any, timeout_s: float = 30.0) -> bool:
    """Whether every actor is idle in the pool and answers (a crashed actor would not)."""
    import ray

    if len(pool.pool) != pool.num_actors:
        return False
    try:
        ray.get([actor.__ray_ready__.remote() for actor in pool.pool], timeout=timeout_s)
    except Exception:  # noqa: BLE001 - any failure means: build a fresh pool
        return False
    return True
