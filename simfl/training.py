"""Local training and evaluation loops, shared by clients, the server and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from simfl.config import TrainConfig


@dataclass(frozen=True)
class LoopStats:
    loss: float
    accuracy: float
    num_examples: int


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def pick_device(num_gpus: float) -> torch.device:
    """CUDA when the client was given GPU resources and one is visible to its process."""
    return torch.device("cuda" if num_gpus > 0 and torch.cuda.is_available() else "cpu")


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict on the CPU, as Flower messages carry it."""
    return {name: value.detach().cpu() for name, value in model.state_dict().items()}


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def train_epochs(
    model: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    seed: int,
) -> LoopStats:
    """``config.local_epochs`` passes of minibatch training, shuffled by ``seed``.

    The optimizer is created fresh on every call: a client keeps no optimizer state between
    rounds, as in FedAvg.
    """
    model.train()
    optimizer = make_optimizer(model, config)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = np.random.default_rng(seed)
    torch.manual_seed(seed)  # dropout and any other torch randomness in this process
    device = device_of(model)
    total_loss, correct, seen = 0.0, 0, 0
    for _ in range(config.local_epochs):
        order = torch.from_numpy(shuffle.permutation(len(labels)))
        for batch in order.split(config.batch_size):
            x, y = features[batch].to(device), labels[batch].to(device)
            optimizer.zero_grad(set_to_none=True)
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(batch)
            correct += int((logits.argmax(dim=1) == y).sum())
            seen += len(batch)
    return LoopStats(total_loss / max(seen, 1), correct / max(seen, 1), len(labels))


@torch.no_grad()
def evaluate(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> LoopStats:
    """Mean cross-entropy and accuracy over the whole set, in fixed order."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    device = device_of(model)
    total_loss, correct = 0.0, 0
    for start in range(0, len(labels), batch_size):
        x = features[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device)
        logits = model(x)
        total_loss += float(loss_fn(logits, y))
        correct += int((logits.argmax(dim=1) == y).sum())
    n = len(labels)
    return LoopStats(total_loss / max(n, 1), correct / max(n, 1), n)
