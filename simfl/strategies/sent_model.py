"""A FedAvg whose server step starts from the model it sent this round.

SCAFFOLD, FedNova, FedDyn and pFedMe compute the new global model from the one the round's
clients received (x^t) and their replies, where Flower's ``aggregate_train`` sees only the
replies. :class:`SentModelStrategy` keeps x^t when it configures the round; everything else
(sampling, reply checks, metric aggregation) is Flower's ``FedAvg``.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from simfl.flower_compat.strategy_state import valid_train_contents


class SentModelStrategy(FedAvg):
    """``FedAvg`` that remembers the model of the round in progress (:attr:`sent`)."""

    sent: ArrayRecord | None = None

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.sent = arrays
        return super().configure_train(server_round, arrays, config, grid)

    def replies_to_aggregate(self, replies: Iterable[Message]) -> list[RecordDict]:
        """The replies Flower would aggregate (its checks), none before a round was sent."""
        contents = valid_train_contents(self, replies)
        return contents if self.sent is not None else []

    def models_of(self, contents: list[RecordDict]) -> list[ArrayRecord]:
        return [content[self.arrayrecord_key] for content in contents]
