"""Local DP-SGD (sample-level DP) in a client's training, with Opacus.

Opacus' ``GradSampleModule`` computes per-sample gradients and its ``DPOptimizer`` clips each
to ``privacy.clipping_norm`` and adds Gaussian noise of std ``noise_multiplier * clipping_norm``
to their sum. What this module adds: batches drawn by Poisson sampling of the client's rows
with rate ``batch_size / n`` from the round's seed (the sampling Opacus' accountant assumes,
without a DataLoader), seeded noise, and a model left as it was (hooks removed, so weights
leave the client under their ordinary names, never ``_module.``-prefixed). The client reports
its sample rate and step count; the server's accountant turns them into epsilon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from simfl.training import LoopStats, device_of, make_optimizer, seed_torch

#: Reply metrics a DP-SGD client reports about its own training this round (the server's
#: accountant, :mod:`simfl.privacy.accounting`, reads them; defined here so that an actor
#: does not import dp-accounting and scipy to name them).
DPSGD_SAMPLE_RATE, DPSGD_STEPS = "dpsgd-sample-rate", "dpsgd-steps"

if TYPE_CHECKING:
    from simfl.schema.privacy import PrivacyConfig
    from simfl.schema.sections import TrainConfig


def dpsgd_plan(num_examples: int, batch_size: int, local_epochs: int) -> tuple[float, int]:
    """(sample rate, steps): Poisson rate batch_size/n, n/batch_size steps per epoch."""
    rate = min(1.0, batch_size / max(num_examples, 1))
    return rate, local_epochs * max(1, round(1 / rate))


def fix_batch_norm(model: nn.Module) -> nn.Module:
    """BatchNorm -> GroupNorm with Opacus' ``ModuleValidator.fix`` (same parameter names)."""
    from opacus.validators import ModuleValidator

    return ModuleValidator.fix(model)


def train_epochs_dpsgd(
    model: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    seed: int,
    privacy: PrivacyConfig,
    *,
    trainable: frozenset[str] | None = None,
) -> LoopStats:
    """DP-SGD for ``config.local_epochs`` epochs' worth of Poisson-sampled steps.

    ``LoopStats.extra`` carries the sample rate and step count for the accountant.
    """
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    n = len(labels)
    rate, steps = dpsgd_plan(n, config.batch_size, config.local_epochs)
    model.train()
    seed_torch(seed)
    sampler = np.random.default_rng(seed)
    generator = torch.Generator(device=device_of(model)).manual_seed(seed)
    per_sample = GradSampleModule(model)
    optimizer = DPOptimizer(
        make_optimizer(model, config, trainable),
        noise_multiplier=privacy.noise_multiplier,
        max_grad_norm=privacy.clipping_norm,
        expected_batch_size=max(1, round(rate * n)),
        generator=generator,
    )
    loss_fn = nn.CrossEntropyLoss()
    device = device_of(model)
    total_loss, correct, seen = 0.0, 0, 0
    try:
        for _ in range(steps):
            batch = torch.from_numpy(np.flatnonzero(sampler.random(n) < rate))
            if len(batch) == 0:  # an empty Poisson batch: nothing to learn, still a step
                continue
            x, y = features[batch].to(device), labels[batch].to(device)
            optimizer.zero_grad(set_to_none=True)
            logits = per_sample(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(batch)
            correct += int((logits.argmax(dim=1) == y).sum())
            seen += len(batch)
    finally:
        per_sample.to_standard_module()  # hooks and per-sample gradients removed
        optimizer.zero_grad(set_to_none=True)
    extra = {DPSGD_SAMPLE_RATE: rate, DPSGD_STEPS: steps}
    return LoopStats(total_loss / max(seen, 1), correct / max(seen, 1), n, extra)
