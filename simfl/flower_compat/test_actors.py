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


def test_actor_pool_submits_and_returns_actors() -> None:
    from flwr.server.superlink.fleet.vce.backend.raybackend import RayBackend
    from flwr.simulation.ray_transport.ray_actor import BasicActorPool, ClientAppActor

    name = "actor-pool-submits-and-returns-actors"
    submit = inspect.getsource(BasicActorPool.submit)
    for line in (
        "actor = self.pool.pop()",
        "app_fn, mssg, cid, context = job",
        "actor_fn(actor, app_fn, mssg, cid, context)",
        "self._future_to_actor[future] = actor",
    ):
        assert line in submit, f"{name}: BasicActorPool.submit no longer does {line!r}"
    fetch = inspect.getsource(BasicActorPool.fetch_result_and_return_actor_to_pool)
    assert "ray.get(future)" in fetch and "self.add_actor_back_to_pool(future)" in fetch, (
        f"{name}: fetch_result_and_return_actor_to_pool no longer gets the result and returns "
        "the actor"
    )
    run_params = [p for p in inspect.signature(ClientAppActor.run).parameters if p != "self"]
    assert run_params[:4] == ["client_app_fn", "message", "cid", "context"], (
        f"{name}: ClientAppActor.run takes {run_params} now"
    )
    process = inspect.getsource(RayBackend.process_message)
    assert "context.node_config[PARTITION_ID_KEY]" in process, (
        f"{name}: RayBackend.process_message no longer takes the cid from the node config"
    )
    assert "a.run.remote(a_fn, mssg, cid, state)" in process, (
        f"{name}: RayBackend.process_message no longer calls ClientAppActor.run remotely, which "
        "simfl's run_message does in its place"
    )
