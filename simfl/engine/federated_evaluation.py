"""Federated evaluation: the clients' own test rows, summed up over the clients that have them.

Means are weighted by each client's number of test examples; the spread (std) and the mean of
the worst 10% of clients describe fairness between clients, so they are over clients,
unweighted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from simfl.engine.records import ClientEvaluation

if TYPE_CHECKING:
    from flwr.app import Message


def federated_metrics(replies: Sequence[dict[str, float]]) -> dict[str, float]:
    """Federated and personalized evaluation over the clients that have local test rows.

    Means are weighted by each client's number of test examples (a client without test rows
    does not count, rather than counting as accuracy 0); the spread (std) and the mean of the
    worst 10% of clients are over clients, unweighted: they describe fairness between clients.
    """
    examples = np.array([float(reply["num-examples"]) for reply in replies])
    kept = [reply for reply, n in zip(replies, examples, strict=True) if n > 0]
    if not kept:
        return {}
    weights = examples[examples > 0]
    metric = lambda key: np.array([float(reply[key]) for reply in kept])  # noqa: E731
    out = {"fed_loss_mean": float(np.average(metric("eval_loss"), weights=weights))}
    out |= spread("fed_accuracy", metric("eval_accuracy"), weights)
    out["pers_loss_mean"] = float(np.average(metric("pers_loss"), weights=weights))
    out |= spread("pers_accuracy", metric("pers_accuracy"), weights)
    if all("eval_wer" in reply for reply in kept):
        # Worst 10% of clients by WER are those with the *highest* WER.
        wer = spread("fed_wer", -metric("eval_wer"), weights)
        out |= {key: -value if key != "fed_wer_std" else value for key, value in wer.items()}
        out["fed_cer_mean"] = float(np.average(metric("eval_cer"), weights=weights))
    return out


def spread(name: str, values: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Weighted mean, std over clients and mean of the worst 10% of clients (at least one)."""
    worst = np.sort(values)[: max(1, int(np.ceil(0.1 * len(values))))]
    return {
        f"{name}_mean": float(np.average(values, weights=weights)),
        f"{name}_std": float(values.std()),
        f"{name}_worst10": float(worst.mean()),
    }


def client_evaluations(
    server_round: int, replies: list[Message], order: dict[int, int]
) -> list[ClientEvaluation]:
    """Each client's evaluation metrics (``num-examples`` included), keyed by its partition
    (``order``: the node each reply came from -> the partition it served)."""
    return [
        ClientEvaluation(
            server_round,
            order.get(reply.metadata.src_node_id, -1),
            {key: float(value) for key, value in reply.content["metrics"].items()},
        )
        for reply in replies
    ]
