"""The client's side of privacy: Flower mods on the train handler, and the DP-SGD trainer.

Mods are attached to the train handler only (``app.train(mods=...)``): as app-level mods
Flower's clipping mods would also wrap evaluate messages, which carry no ``clipping_norm``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flwr.app import Context, Message

from simfl.flower_compat.dp import exact_dp_clipping, seeded_numpy_global
from simfl.flower_compat.grid import message_partition, partition_as_node_mod
from simfl.privacy.central import PARTITION_METRIC
from simfl.seeding import derive_seed

if TYPE_CHECKING:
    from simfl.engine.plan import RunPlan


def train_mods(plan: RunPlan) -> list[Any]:
    """Flower mods for the scenario's privacy mode, outermost first."""
    privacy = plan.scenario.privacy
    seed = plan.scenario.scenario.seed
    if privacy.mode == "none" and privacy.audit.attack == "none" and not privacy.secagg.enabled:
        return []
    mods: list[Any] = [seeded_noise_mod(seed)]
    if privacy.secagg.enabled:
        from simfl.flower_compat.secagg import secaggplus_mod
        from simfl.privacy.secagg import dropout_mod, fitins_bridge_mod

        mods += [
            partition_as_node_mod,
            dropout_mod(privacy.secagg, seed),
            secaggplus_mod,
            fitins_bridge_mod,
        ]
    mods.append(report_partition_mod)
    if privacy.central and privacy.clipping_side == "client":
        from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod

        mods.append(fixedclipping_mod if privacy.clipping == "fixed" else adaptiveclipping_mod)
    if privacy.mode == "local-output":
        from flwr.clientapp.mod import LocalDpMod

        clip = privacy.clipping_norm
        mods.append(LocalDpMod(clip, clip, privacy.local_epsilon, privacy.delta))
    return mods


def seeded_noise_mod(seed: int) -> Any:
    """Seeds numpy's global generator (Flower's mods draw their noise from it) per client and
    round, so a DP run is reproducible; and lets Flower's clipping pass an all-zero update."""

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        config = message.content.config_records.get("config", {})
        # SecAgg+'s protocol messages carry the round only as their group id.
        server_round = config.get("server-round", message.metadata.group_id)
        client = message_partition(message)
        noise_seed = derive_seed(seed, "client-dp-noise", client, str(server_round))
        with seeded_numpy_global(noise_seed), exact_dp_clipping():
            return call_next(message, context)

    return mod


def report_partition_mod(message: Message, context: Context, call_next: Any) -> Message:
    """Adds the client's partition id to its train reply (per-client accounting, audit)."""
    reply = call_next(message, context)
    if not reply.has_error():
        reply.content["metrics"][PARTITION_METRIC] = message_partition(message)
    return reply
