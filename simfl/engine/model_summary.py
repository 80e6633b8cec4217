"""What the run summary says about the model: where its weights came from, what travels.

Why: with a frozen encoder only a few percent of the model is ever in a Flower message; the
summary records the full model's size next to one client update's, measured as Flower
serializes them, so the saving is a number in every run's results rather than a claim.
"""

from __future__ import annotations

from typing import Any

import torch
from flwr.app import ArrayRecord

from simfl.engine.plan import RunPlan
from simfl.personalization import frozen_names, local_names, split_state


def record_bytes(state: dict[str, torch.Tensor]) -> int:
    """Bytes of array payload when ``state`` travels as a Flower ArrayRecord."""
    return sum(len(array.data) for array in ArrayRecord(state).values())


def model_summary(plan: RunPlan) -> dict[str, Any]:
    """Initialisation, parameter counts, and full-model vs per-update bytes.

    Builds the initial model, so an unreachable ``model.pretrained`` fails here, before the
    simulation starts, with its one-line error.
    """
    params = plan.scenario.model
    model = plan.initial_model()
    state = {name: value.detach().cpu() for name, value in model.state_dict().items()}
    shared, _ = split_state(state, local_names(model, plan.scenario.strategy), frozen_names(model))
    full, update = record_bytes(state), record_bytes(shared)
    return {
        "name": params.name,
        "init": params.init_description(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "full_model_bytes": full,
        "update_bytes": update,
        "update_fraction": update / full if full else 0.0,
    }
