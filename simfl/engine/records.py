"""What the engine reports each round; the recorder turns these into files and W&B logs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

NAN = math.nan
TIMING_COLUMNS = ("round_seconds", "train_seconds", "evaluate_seconds", "central_eval_seconds")


@dataclass
class RoundRecord:
    """One row of ``metrics.parquet``. Round 0 holds the central evaluation of the initial model."""

    round: int
    train_loss: float = NAN
    train_accuracy: float = NAN
    central_loss: float = NAN
    central_accuracy: float = NAN
    fed_loss_mean: float = NAN
    fed_accuracy_mean: float = NAN
    fed_accuracy_std: float = NAN
    fed_accuracy_worst10: float = NAN
    pers_loss_mean: float = NAN
    pers_accuracy_mean: float = NAN
    pers_accuracy_std: float = NAN
    pers_accuracy_worst10: float = NAN
    # Transcription tasks only (NaN otherwise): word and character error rates.
    central_wer: float = NAN
    central_cer: float = NAN
    fed_wer_mean: float = NAN
    fed_wer_std: float = NAN
    fed_wer_worst10: float = NAN
    fed_cer_mean: float = NAN
    clients_sampled: int = 0
    clients_succeeded: int = 0
    clients_failed: int = 0
    eval_clients_sampled: int = 0
    eval_clients_succeeded: int = 0
    eval_clients_failed: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    round_seconds: float = 0.0
    train_seconds: float = 0.0
    evaluate_seconds: float = 0.0
    central_eval_seconds: float = 0.0

    def as_row(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class ClientFailure:
    """A reply that carried an error instead of a result, with the client's traceback."""

    round: int
    phase: str
    partition_id: int
    node_id: int
    reason: str


@dataclass(frozen=True)
class ClientEvaluation:
    """One client's federated-evaluation reply in one round: every metric it sent back.

    Kept per client (``clients.parquet``) so reports can show how accuracy is spread over clients
    (fairness), which the round's mean / std / worst-10% summarise but do not show.
    """

    round: int
    partition_id: int
    metrics: dict[str, float]

    def as_row(self) -> dict[str, float | int]:
        return {"round": self.round, "partition_id": self.partition_id, **self.metrics}
