"""Least-squares clients for the strategy-vs-paper tests (SCAFFOLD, FedNova, FedDyn).

Client i minimizes ½‖A_i w − b_i‖²/m_i with a bias-free linear model; its trainer takes full-batch
SGD steps on a ``work`` object with a ``model`` (as simfl's trainers receive a workspace), and
its reply is a real Flower Message.
"""

from __future__ import annotations

import torch
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict


def sgd_trainer(a, b, steps: int, lr: float, momentum: float = 0.0):
    """``steps`` full-batch SGD steps (torch's rule) on ``work.model``."""

    def train(work) -> None:
        optimizer = torch.optim.SGD(work.model.parameters(), lr=lr, momentum=momentum)
        inputs, targets = torch.from_numpy(a), torch.from_numpy(b)
        for _ in range(steps):
            optimizer.zero_grad()
            loss = 0.5 * ((work.model(inputs).squeeze(1) - targets) ** 2).mean()
            loss.backward()
            optimizer.step()

    return train


def reply(message: Message, weight, metrics: dict, **records: ArrayRecord) -> Message:
    """The client's reply: its model's ``weight``, its metrics, and any extra records."""
    content = RecordDict(
        {
            "arrays": ArrayRecord({"weight": Array(weight)}),
            "metrics": MetricRecord(metrics),
            **records,
        }
    )
    return Message(content=content, reply_to=message)
