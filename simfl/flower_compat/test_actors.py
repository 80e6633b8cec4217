"""Contract test for :mod:`simfl.flower_compat.actors`."""

from __future__ import annotations

import inspect


def test_actor_pool_kills_only_idle_actors() -> None:
    from flwr.simulation.ray_transport.ray_actor import BasicActorPool

    name = "actor-pool-kills-only-idle-actors"
    params = inspect.signature(BasicActorPool.__init__).parameters
    for argument in ("actor_type", "client_resources", "actor_kwargs"):
        assert argument in params, f"{name}: BasicActorPool lost its {argument!r} argument"
    for method in ("add_actors_to_pool", "terminate_all_actors"):
        assert callable(getattr(BasicActorPool, method, None)), f"{name}: {method}"
    init = inspect.getsource(BasicActorPool.__init__)
    for attribute in ("self.pool", "self.num_actors", "self.actors_capacity", "create_actor_fn"):
        assert attribute in init, f"{name}: BasicActorPool no longer has {attribute}"
    add = inspect.getsource(BasicActorPool.add_actors_to_pool)
    assert "self.create_actor_fn()" in add, (
        f"{name}: actors are no longer made by create_actor_fn, so ActorPools cannot track "
        "(and kill) busy actors"
    )
