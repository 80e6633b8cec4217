"""MOON's model parts and loss (Li, He & Song 2021): the projection head, the representation
z of a forward pass, and Eq. 3's model-contrastive loss as a task for ``train_epochs``. The
feature that uses them is :mod:`simfl.strategies.moon`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ProjectedOutput(nn.Module):
    """``output(projection(h))``; the projection's output is the representation z."""

    def __init__(self, output: nn.Linear, projection_dim: int) -> None:
        super().__init__()
        width = output.in_features
        self.projection = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, projection_dim)
        )
        self.output = nn.Linear(projection_dim, output.out_features)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.output(self.projection(h))


def with_projection(model: nn.Module, projection_dim: int) -> nn.Module:
    """The model with its final linear layer (``head``, or the last of a ``head`` Sequential)
    replaced by a projection head and a new output layer."""
    head = model.head
    if isinstance(head, nn.Linear):
        model.head = ProjectedOutput(head, projection_dim)
    elif isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Linear):
        name = list(head._modules)[-1]
        head._modules[name] = ProjectedOutput(head[-1], projection_dim)
    else:
        raise ValueError(f"moon: {type(model).__name__}'s head ends in no linear layer")
    return model


def representation(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, z) of one forward pass."""
    projection = next(m for m in model.modules() if isinstance(m, ProjectedOutput)).projection
    captured: list[torch.Tensor] = []
    hook = projection.register_forward_hook(lambda module, args, out: captured.append(out))
    try:
        logits = model(x)
    finally:
        hook.remove()
    return logits, captured[0].flatten(1)


def contrastive_loss(
    z: torch.Tensor, z_glob: torch.Tensor, z_prev: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Eq. 3, averaged over the batch."""
    positive = nn.functional.cosine_similarity(z, z_glob, dim=1) / temperature
    negative = nn.functional.cosine_similarity(z, z_prev, dim=1) / temperature
    return -(positive - torch.logsumexp(torch.stack([positive, negative]), dim=0)).mean()


class MoonLoss:
    """A task (``batch_loss``) for ``train_epochs``: cross-entropy plus μ ℓ_con."""

    def __init__(self, global_model: nn.Module, previous: nn.Module, mu: float, tau: float):
        self.global_model, self.previous, self.mu, self.tau = global_model, previous, mu, tau

    def batch_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[Any, int]:
        logits, z = representation(model, x)
        loss = nn.functional.cross_entropy(logits, y)
        if self.mu > 0:
            with torch.no_grad():
                z_glob = representation(self.global_model, x)[1]
                z_prev = representation(self.previous, x)[1]
            loss = loss + self.mu * contrastive_loss(z, z_glob, z_prev, self.tau)
        return loss, int((logits.argmax(dim=1) == y).sum())
