"""Norm-bounded client updates: each client scales its update down to ``train.max_update_norm``.

Bounding every update's L2 norm limits how far one client can move the global model (the
norm-bounding defence of Sun et al., "Can You Really Backdoor Federated Learning?", 2019) and
is the clipping step of DP-FedAvg without its noise. Flower's ``fixedclipping_mod`` clips only
for its DP wrappers (it reads the norm from the server's config); this mod clips any run, with
the norm from the scenario. An update within the norm travels bit for bit as trained;
non-floating arrays (BatchNorm's step counter) are never scaled.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from simfl.engine.extensions import ClientMod, Feature, ModStage

if TYPE_CHECKING:
    from flwr.app import ArrayRecord, Context, Message

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan


class UpdateClippingFeature(Feature):
    """Clients bound their update's L2 norm (``train.max_update_norm`` > 0)."""

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return scenario.train.max_update_norm > 0.0

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        mod = update_clipping_mod(plan.scenario.train.max_update_norm)
        return [ClientMod(ModStage.TRAINER, "train", mod)]


def update_norm(received: ArrayRecord, trained: ArrayRecord) -> float:
    """The L2 norm of ``trained - received`` over the floating-point arrays, in float64."""
    total = 0.0
    for name, array in trained.items():
        new = array.numpy()
        if np.issubdtype(new.dtype, np.floating):
            delta = new.astype(np.float64) - received[name].numpy().astype(np.float64)
            total += float(np.sum(delta * delta))
    return math.sqrt(total)


def clipped(received: ArrayRecord, trained: ArrayRecord, max_norm: float) -> ArrayRecord | None:
    """``received + update · max_norm / ‖update‖`` in each array's dtype; None when the update
    is within ``max_norm`` (it then travels unchanged)."""
    from flwr.app import Array, ArrayRecord

    norm = update_norm(received, trained)
    if norm <= max_norm:
        return None
    scale = max_norm / norm
    out = {}
    for name, array in trained.items():
        new = array.numpy()
        if np.issubdtype(new.dtype, np.floating):
            base = received[name].numpy().astype(np.float64)
            new = (base + (new.astype(np.float64) - base) * scale).astype(new.dtype)
        out[name] = Array(new)
    return ArrayRecord(out)


def update_clipping_mod(max_norm: float) -> Any:
    """Clips the reply's update against the model the message brought."""

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        reply = call_next(message, context)
        if reply.has_error():
            return reply
        bounded = clipped(message.content["arrays"], reply.content["arrays"], max_norm)
        if bounded is not None:
            reply.content["arrays"] = bounded
        return reply

    return mod
