"""Local training and evaluation loops, shared by clients, the server and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from simfl.precision import autocast, grad_scaler
from simfl.schema.sections import TrainConfig


@dataclass(frozen=True)
class LoopStats:
    loss: float
    accuracy: float
    num_examples: int
    extra: dict[str, float] = field(default_factory=dict)  # task metrics, e.g. wer and cer


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def pick_device(num_gpus: float) -> torch.device:
    """CUDA when the client was given GPU resources and one is visible to its process."""
    return torch.device("cuda" if num_gpus > 0 and torch.cuda.is_available() else "cpu")


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict on the CPU, as Flower messages carry it."""
    return {name: value.detach().cpu() for name, value in model.state_dict().items()}


def make_optimizer(
    model: nn.Module, config: TrainConfig, only: frozenset[str] | None = None
) -> torch.optim.Optimizer:
    """The configured optimizer over the model's parameters (only those named in ``only``)."""
    params = [
        p
        for name, p in model.named_parameters()
        if p.requires_grad and (only is None or name in only)
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def seed_torch(seed: int) -> None:
    """``torch.manual_seed(seed)`` for the devices in use, without its cost per client.

    On a machine where CUDA is not initialized, ``torch.manual_seed`` queues the CUDA seeding
    with a formatted stack trace (``torch.cuda._lazy_call``), as costly as training a small
    client. The CPU generator gets the same seed either way; CUDA's is seeded
    when CUDA is in use (a model on the GPU has initialized it).
    """
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(seed)


def train_epochs(
    model: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    seed: int,
    *,
    proximal_mu: float = 0.0,
    anchor: dict[str, torch.Tensor] | None = None,
    trainable: frozenset[str] | None = None,
    task: Any = None,
    max_steps: int | None = None,
) -> LoopStats:
    """``config.local_epochs`` passes of minibatch training, shuffled by ``seed``; with
    ``max_steps``, only that many minibatch steps (a deadline's partial work).

    The optimizer is created fresh on every call: a client keeps no optimizer state between
    rounds, as in FedAvg. With ``proximal_mu > 0`` the loss gains FedProx's
    mu/2 * ||w - anchor||^2 over the parameters named in ``anchor`` (the received global
    weights); ``trainable`` restricts the optimizer to those parameter names (the local part,
    when shared layers are frozen). The reported loss is the data loss alone. ``task`` (see
    :mod:`simfl.tasks`) replaces classification's loss and accuracy, e.g. for transcription.
    ``config.precision`` autocasts the forward pass (and scales fp16 losses); fp32 adds nothing
    to the plain loop.
    """
    model.train()
    optimizer = make_optimizer(model, config, trainable)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = np.random.default_rng(seed)
    seed_torch(seed)  # dropout and any other torch randomness in this process
    device = device_of(model)
    proximal = _proximal_pairs(model, anchor) if proximal_mu > 0 else []
    scaler = grad_scaler(config.precision, device)
    total_loss, correct, seen, steps = 0.0, 0, 0, 0
    for _ in range(config.local_epochs):
        order = torch.from_numpy(shuffle.permutation(len(labels)))
        for batch in order.split(config.batch_size):
            if max_steps is not None and steps >= max_steps:
                break
            steps += 1
            x, y = features[batch].to(device), labels[batch].to(device)
            optimizer.zero_grad(set_to_none=True)
            with autocast(config.precision, device):
                if task is None:
                    logits = model(x)
                    loss = loss_fn(logits, y)
                    batch_correct = int((logits.argmax(dim=1) == y).sum())
                else:
                    loss, batch_correct = task.batch_loss(model, x, y)
            objective = loss
            if proximal:
                drift = sum((w - w0).pow(2).sum() for w, w0 in proximal)
                objective = loss + 0.5 * proximal_mu * drift
            scaler.scale(objective).backward()
            scaler.step(optimizer)  # disabled scaler (fp32, bf16): plain optimizer.step()
            scaler.update()
            total_loss += float(loss.detach()) * len(batch)
            correct += batch_correct
            seen += len(batch)
    return LoopStats(total_loss / max(seen, 1), correct / max(seen, 1), len(labels))


def _proximal_pairs(
    model: nn.Module, anchor: dict[str, torch.Tensor] | None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(parameter, its global value) for every trainable parameter named in ``anchor``."""
    if not anchor:
        return []
    device = device_of(model)
    return [
        (p, anchor[name].detach().to(device))
        for name, p in model.named_parameters()
        if p.requires_grad and name in anchor
    ]


#: Rows per forward pass when evaluating on a CPU. At 256 rows a conv layer's activations
#: (256 x 16 x 40 x 101 floats: 66 MB for the reference CNN) spill the CPU's caches; at 32 they
#: fit (8 MB), and a pass over the test set is faster for it (``simfl bench w1`` evaluates
#: one each round). A multiple of the vector width, so each row's logits keep the bits they
#: have in the whole batch (checked in tests/test_client_training.py); loss and accuracy are
#: still summed per evaluation batch, so results are unchanged.
CPU_FORWARD_ROWS = 32


def forward_in_chunks(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``, on a CPU in slices of :data:`CPU_FORWARD_ROWS` rows (why: there). The
    remainder joins the last slice: a slice of a few rows can take another kernel path and
    change a logit's last bit, where slices of 32 or 64 rows keep the whole batch's bits."""
    if x.device.type != "cpu" or len(x) < 2 * CPU_FORWARD_ROWS:
        return model(x)
    whole = len(x) // CPU_FORWARD_ROWS * CPU_FORWARD_ROWS - CPU_FORWARD_ROWS
    parts = [*x[:whole].split(CPU_FORWARD_ROWS), x[whole:]]
    return torch.cat([model(part) for part in parts])


@torch.no_grad()
def evaluate(
    model: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    task: Any = None,
    precision: str = "fp32",
) -> LoopStats:
    """Mean cross-entropy and accuracy over the whole set, in fixed order (or ``task``'s),
    under ``precision``'s autocast."""
    with autocast(precision, device_of(model)):
        return _evaluate(model, features, labels, batch_size, task)


def _evaluate(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch_size: int, task: Any
) -> LoopStats:
    if task is not None:
        return task.evaluate(model, features, labels, batch_size)
    return stats_from_batches(batch_sums(model, features, labels, batch_size), len(labels))


def stats_from_batches(sums: list[tuple[float, int]], num_examples: int) -> LoopStats:
    """Mean loss and accuracy from each evaluation batch's (summed loss, correct rows), added
    in batch order: the same bits wherever the batches were computed."""
    total_loss, correct = 0.0, 0
    for batch_loss, batch_correct in sums:
        total_loss += batch_loss
        correct += batch_correct
    n = num_examples
    return LoopStats(total_loss / max(n, 1), correct / max(n, 1), n)


@torch.no_grad()
def batch_sums(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> list[tuple[float, int]]:
    """(summed cross-entropy, correct rows) of each ``batch_size`` batch, in order: an
    evaluation cut into batches that may run in different processes (simfl.engine.
    central_slices) and be added up, in order, by :func:`stats_from_batches`."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    device = device_of(model)
    sums = []
    for start in range(0, len(labels), batch_size):
        x = features[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device)
        logits = forward_in_chunks(model, x)
        sums.append((float(loss_fn(logits, y)), int((logits.argmax(dim=1) == y).sum())))
    return sums
