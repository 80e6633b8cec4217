"""Flower's ClientApp actor pools, kept alive across the simulations of one Ray session.

Assumptions (contract-tested in ``test_actors.py``):

- ``actor-pool-kills-only-idle-actors``: ``BasicActorPool(actor_type, client_resources,
  actor_kwargs)`` (``flwr.simulation.ray_transport.ray_actor``) creates actors with
  ``self.create_actor_fn()`` in ``add_actors_to_pool``, holds the idle ones in ``pool``,
  counts ``num_actors`` and sizes itself by ``actors_capacity``; its
  ``terminate_all_actors`` kills only idle actors, so :class:`ActorPools` tracks every actor
  it creates.
- ``actor-pool-submits-and-returns-actors``: ``submit(actor_fn, (app_fn, message, cid,
  context))`` pops an idle actor from ``pool``, calls ``actor_fn(actor, app_fn, message, cid,
  context)`` and keeps the future in ``_future_to_actor``;
  ``fetch_result_and_return_actor_to_pool(future)`` ``ray.get``s it and returns the actor to
  ``pool``; ``ClientAppActor.run(app_fn, message, cid, context)`` returns ``(cid, reply,
  context)``. Flower's ``RayBackend.process_message`` returns a dead actor to the pool, so
  :func:`run_message` replaces it instead.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

#: Told that a client actor died running a message for a node (its partition id, and why Ray
#: says it died); says whether to run the message again.
ActorDied = Callable[[int, str], bool]


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

    def forget(self, pool: Any, actor: Any) -> None:
        """Stop tracking ``actor`` of ``pool``: it died, and its replacement is tracked."""
        for key, live in self._pools.items():
            if live is pool:
                tracked = self._actors[key]  # the list _track appends to: changed in place
                tracked[:] = [a for a in tracked if a is not actor]

    def holds(self, pool: Any) -> bool:
        """Whether ``pool`` is one of the live pools (not killed by :meth:`close`)."""
        return any(live is pool for live in self._pools.values())

    def _kill(self, key: str) -> None:
        import ray

        self._pools.pop(key, None)  # first: its busy actors' deaths are not to be replaced
        for actor in self._actors.pop(key, []):
            with contextlib.suppress(Exception):  # already dead is fine
                ray.kill(actor)

    def close(self) -> None:
        """Kill every actor of every pool (busy ones included)."""
        for key in list(self._pools):
            self._kill(key)


def run_message(
    pools: ActorPools,
    pool: Any,
    job: tuple[Any, Any, str, Any],
    actor_died: ActorDied,
) -> tuple[Any, Any]:
    """Run the ClientApp on a job ``(app_fn, message, cid, context)`` in one of ``pool``'s
    actors, as Flower's ``RayBackend.process_message`` does, except when the actor's process
    dies: the dead actor leaves the pool, a new one (tracked like the others) takes its place,
    and the message runs again on the next idle actor for as long as ``actor_died`` allows.
    Actors that ``pools`` killed itself (the session closing) are not replaced.
    """
    from ray.exceptions import RayActorError

    while True:
        future = pool.submit(
            lambda actor, fn, msg, node, ctx: actor.run.remote(fn, msg, node, ctx), job
        )
        try:
            return pool.fetch_result_and_return_actor_to_pool(future)
        except RayActorError as error:
            dead = pool._future_to_actor.pop(future, None)  # dead: never back into the pool
            if not pools.holds(pool):
                raise
            pools.forget(pool, dead)
            pool.pool.append(pool.create_actor_fn())
            if not actor_died(int(job[2]), death_cause(error)):
                raise
        except BaseException:
            pool.add_actor_back_to_pool(future)
            raise


def death_cause(error: Exception) -> str:
    """One line for a dead actor: Ray's error type and the first line of its explanation."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = next((line for line in lines if "died" in line or "exit" in line.lower()), "")
    return f"client actor died ({type(error).__name__}: {detail[:200]}); replaced, message rerun"


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
