"""Everything simfl relies on that Flower does not offer as public API, in one module.

Flower 1.42's simulation engine has no hook for what a benchmark needs: reusing actors across
runs, seeding node sampling, mapping node ids to partitions in a stable order. Each piece here
leans on one Flower internal; ``tests/test_flower_contract.py`` checks every assumption by
name, so a Flower upgrade that changes one fails there, loudly, instead of silently changing
results. Nothing else in simfl imports Flower's private modules.

Assumptions (each tested):
1. ``flwr.simulation.run_simulation(server_app, client_app, num_supernodes, backend_config,
   verbose_logging)`` runs both apps in this process and raises ``RuntimeError`` from the
   ServerApp's exception.
2. ``start_vce`` imports ``raybackend.RayBackend`` when it starts, by name, so pointing the
   module attribute at a subclass makes the engine use it.
3. ``RayBackend`` keeps its pool in ``self.pool`` and its settings in ``client_resources`` and
   ``actor_kwargs``; ``build(app_fn)`` makes the pool and ``terminate()`` kills it and shuts Ray.
4. ``BasicActorPool(actor_type, client_resources, actor_kwargs)`` creates actors with
   ``create_actor_fn``, holds the idle ones in ``pool`` and counts ``num_actors``; its
   ``terminate_all_actors`` kills only idle actors (so we track every actor we create).
5. Flower's strategies sample nodes with the module-level ``random.sample`` over
   ``grid.get_node_ids()`` (``strategy_utils.sample_nodes``).
6. A simulated node's ``context.node_config[PARTITION_ID_KEY]`` is its partition id.
7. Flower's strategies keep their server state in plain attributes, each ``None`` until the
   first round: ``current_arrays`` (FedOpt family: dict of ndarrays; FedAvgM, QFedAvg:
   ``ArrayRecord``), ``m_t`` and ``v_t`` (FedAdam, FedYogi, FedAdagrad: dicts of ndarrays),
   ``momentum_vector`` (FedAvgM: list of ndarrays). Nothing else carries over between rounds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from flwr.app import Array, ArrayRecord, Message
from flwr.clientapp import ClientApp
from flwr.common.constant import PARTITION_ID_KEY
from flwr.serverapp import Grid, ServerApp

from simfl.errors import SimflError

if TYPE_CHECKING:
    from simfl.engine.runtime import RaySession

__all__ = [
    "PARTITION_ID_KEY",
    "ActorPools",
    "PartitionOrderedGrid",
    "run_flower_simulation",
    "restore_strategy_server_state",
    "seeded_sampling",
    "strategy_server_state",
]


class PartitionOrderedGrid:
    """A Grid whose node ids come in partition order, so seeded sampling picks the same clients.

    Flower's node ids are random per run; a strategy samples from ``get_node_ids()``. Listing
    them in partition order makes "the same seed" mean "the same partitions". Only the two
    methods Flower's strategies and simfl's loop call are offered.
    """

    def __init__(self, grid: Grid, partition_of: dict[int, int]) -> None:
        self._grid = grid
        self.partition_of = partition_of

    def get_node_ids(self) -> list[int]:
        return sorted(self._grid.get_node_ids(), key=lambda node: self.partition_of[node])

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float) -> list[Message]:
        return list(self._grid.send_and_receive(messages, timeout=timeout))


#: Assumption 7: every attribute through which a Flower strategy carries state across rounds.
STRATEGY_STATE_ATTRIBUTES = ("current_arrays", "m_t", "v_t", "momentum_vector")


def strategy_server_state(strategy: Any) -> dict[str, Any]:
    """The strategy's server state (assumption 7) as tensors, for a ``weights_only`` checkpoint.

    Each value keeps its container (``ArrayRecord``, dict or list) and every array its dtype,
    so :func:`restore_strategy_server_state` gives the strategy back bit for bit.
    """
    state: dict[str, Any] = {}
    for name in STRATEGY_STATE_ATTRIBUTES:
        value = getattr(strategy, name, None)
        if value is None:
            continue
        if isinstance(value, ArrayRecord):
            state[name] = {
                "kind": "record",
                "arrays": {k: _tensor(a.numpy()) for k, a in value.items()},
            }
        elif isinstance(value, dict):
            state[name] = {"kind": "dict", "arrays": {k: _tensor(v) for k, v in value.items()}}
        elif isinstance(value, list):
            state[name] = {"kind": "list", "arrays": [_tensor(v) for v in value]}
        else:
            raise SimflError(
                f"cannot checkpoint {type(strategy).__name__}.{name} ({type(value).__name__}): "
                "simfl.engine.flower_internals does not know this Flower state"
            )
    return state


def restore_strategy_server_state(strategy: Any, state: dict[str, Any]) -> None:
    """Set what :func:`strategy_server_state` saved back on a freshly built strategy."""
    for name, saved in state.items():
        if name not in STRATEGY_STATE_ATTRIBUTES or not hasattr(strategy, name):
            raise SimflError(f"checkpoint holds {name!r}, which {type(strategy).__name__} lacks")
        arrays = saved["arrays"]
        if saved["kind"] == "record":
            value: Any = ArrayRecord({k: Array(t.numpy()) for k, t in arrays.items()})
        elif saved["kind"] == "dict":
            value = {k: t.numpy() for k, t in arrays.items()}
        else:
            value = [t.numpy() for t in arrays]
        setattr(strategy, name, value)


def _tensor(array: Any) -> Any:
    import numpy as np
    import torch

    return torch.from_numpy(np.array(array, copy=True))


@contextlib.contextmanager
def seeded_sampling(seed: int) -> Iterator[None]:
    """Seed Flower's node sampling (module ``random``) for one call; restore ``random`` after.

    Flower's strategies draw from the global ``random`` module, so the draw is ours to seed,
    but other code in this process must not see its state changed.
    """
    saved = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved)


class ActorPools:
    """Flower's ClientApp actor pools, kept alive across the simulations of one Ray session.

    Flower's ``RayBackend`` builds a pool of actors for every ``run_simulation`` and, when the
    run ends, kills them and shuts Ray down, so each sweep cell would pay Ray's and the actors'
    start-up again. A pool here is built once per ``client_resources`` and reused by every
    later simulation with the same resources (actors hold no run state: each call brings its
    ClientApp, and simfl's worker cache is keyed by the run plan). A pool whose actors do not
    answer is rebuilt, and then every actor it ever made is killed, busy ones included
    (Flower's ``terminate_all_actors`` only reaches idle ones).
    """

    def __init__(self) -> None:
        self._pools: dict[str, Any] = {}
        self._actors: dict[str, list[Any]] = {}

    def get(self, client_resources: dict[str, Any], actor_kwargs: dict[str, Any]) -> Any:
        from flwr.simulation.ray_transport.ray_actor import BasicActorPool, ClientAppActor

        key = json.dumps([client_resources, actor_kwargs], sort_keys=True, default=str)
        pool = self._pools.get(key)
        if pool is not None and not _responsive(pool):
            self._kill(key)
            pool = None
        if pool is None:
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
        for key in list(self._pools):
            self._kill(key)

    def live_actors(self) -> int:
        """How many actors the pools have made and not killed (for tests and diagnostics)."""
        return sum(len(actors) for actors in self._actors.values())


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


@contextlib.contextmanager
def _session_backend(session: RaySession) -> Iterator[None]:
    """Make Flower's engine use ``session``'s actor pools and leave Ray running (assumption 2)."""
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


@contextlib.contextmanager
def _flower_log_level(level: int) -> Iterator[None]:
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
) -> None:
    """Flower's ``run_simulation`` on ``session``'s Ray runtime and actors (assumption 1).

    Flower logs every client failure with a traceback; simfl reports them itself, once, so the
    ``flwr`` logger is quiet unless ``verbose``. Re-raises what the ServerApp raised.
    """
    from flwr.simulation import run_simulation

    level = logging.DEBUG if verbose else logging.CRITICAL
    try:
        with (
            warnings.catch_warnings(),
            _session_backend(session),
            _flower_log_level(level),
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
