"""The server's side of HE aggregation: it adds ciphertexts it cannot read.

:class:`HEAggregation` wraps the scenario's Flower strategy. Each reply carries its client's
update as CKKS ciphertexts (:mod:`simfl.privacy.he_client`); the server, holding only the
public context, computes Σ w_i · Enc(u_i) with each weight w_i (the reply's ``num-examples``,
or 1 under central DP's uniform weights) as a plaintext scalar, and hands that sum to the key
authority, which decrypts it. The mean update Σ w_i u_i / Σ w_i, added to the model the round
sent, becomes every reply's model, so the wrapped strategy's own ``aggregate_train`` (FedAvg's
weighted mean, FedAvgM's or FedAdam's server step, central DP's noise around it) runs on the
mean unchanged, as with SecAgg+. What each round cost and the bound on its CKKS error are
kept for :class:`HECallback`, which puts them in ``metrics.parquet``.

The error bound: decryption and decoding are linear, so the decrypted sum differs from the
plaintext sum by Σ w_i e_i (each client's encryption error e_i, which it measured with its
secret context and reported) plus the rounding of the plaintext multiplications, far smaller;
the mean's error is at most Σ w_i max|e_i| / Σ w_i.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from simfl.engine.server_callbacks import CallbackResult, RoundState, ServerCallback
from simfl.privacy.he_ckks import KeyAuthority, load_context, to_bytes, weighted_sum
from simfl.privacy.he_client import CIPHERTEXT_KEY, ENCRYPT_SECONDS_KEY, ERROR_KEY
from simfl.privacy.wrapper import TrainingWrapper


@dataclass(frozen=True)
class HERound:
    """What one round's encrypted aggregation cost, and its error bound."""

    error_bound: float
    server_seconds: float
    decrypt_seconds: float
    encrypt_seconds_mean: float
    encrypt_seconds_max: float
    ciphertext_bytes: int  # all replies' ciphertexts
    plaintext_bytes: int  # the same updates as float32 arrays

    def metrics(self) -> dict[str, float]:
        return {
            "he_error_bound": self.error_bound,
            "he_server_seconds": self.server_seconds,
            "he_decrypt_seconds": self.decrypt_seconds,
            "he_encrypt_seconds_mean": self.encrypt_seconds_mean,
            "he_encrypt_seconds_max": self.encrypt_seconds_max,
            "he_ciphertext_mb": self.ciphertext_bytes / 1e6,
            "he_plaintext_mb": self.plaintext_bytes / 1e6,
        }


class _Sampling:
    """One of the wrapped strategy's cohort settings, read and set through the wrapper: the
    systems plan fixes each round's cohort on the strategy it is given (``fixed_cohort``),
    and the wrapped strategy is the one that samples."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, wrapper: HEAggregation, owner: type) -> Any:
        return vars(wrapper.inner)[self.name]

    def __set__(self, wrapper: HEAggregation, value: Any) -> None:
        vars(wrapper.inner)[self.name] = value


class HEAggregation(TrainingWrapper):
    """The wrapped strategy, with the mean of the replies' updates computed under CKKS."""

    fraction_train = _Sampling()
    fraction_evaluate = _Sampling()
    min_train_nodes = _Sampling()
    min_evaluate_nodes = _Sampling()
    min_available_nodes = _Sampling()

    def __init__(
        self, inner: Strategy, authority: KeyAuthority, weight_key: str = "num-examples"
    ) -> None:
        super().__init__(inner)
        self.authority, self.weight_key = authority, weight_key
        self.context = load_context(authority.public_context())
        if self.context.is_private():
            raise RuntimeError("the server's CKKS context must not hold the secret key")
        self.sent: ArrayRecord | None = None
        self.rounds: dict[int, HERound] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.sent = arrays
        return self.inner.configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        encrypted = [r for r in replies if not r.has_error() and CIPHERTEXT_KEY in _arrays(r)]
        if encrypted and self.sent is not None:
            mean = self.decrypted_mean(server_round, encrypted)
            for reply in encrypted:
                reply.content["arrays"] = mean
        return self.inner.aggregate_train(server_round, replies)

    def decrypted_mean(self, server_round: int, replies: list[Message]) -> ArrayRecord:
        """x + Σ w_i u_i / Σ w_i, its sum computed on ciphertexts and decrypted elsewhere."""
        metrics = [reply.content["metrics"] for reply in replies]
        weights = [float(m[self.weight_key]) for m in metrics]
        blobs = [_arrays(r)[CIPHERTEXT_KEY].numpy().tobytes() for r in replies]
        start = time.perf_counter()
        total = to_bytes(weighted_sum(self.context, blobs, weights))
        server_seconds = time.perf_counter() - start
        start = time.perf_counter()
        summed = self.authority.decrypt_sum(total)
        decrypt_seconds = time.perf_counter() - start
        errors = [float(m[ERROR_KEY]) for m in metrics]
        encrypt = [float(m[ENCRYPT_SECONDS_KEY]) for m in metrics]
        self.rounds[server_round] = HERound(
            float(np.dot(weights, errors) / sum(weights)),
            server_seconds,
            decrypt_seconds,
            float(np.mean(encrypt)),
            float(np.max(encrypt)),
            sum(len(blob) for blob in blobs),
            len(replies) * 4 * int(sum(a.numpy().size for a in self.sent.values())),
        )
        return model_plus(self.sent, summed / sum(weights))

    def state_dict(self) -> dict[str, Any]:
        """The wrapped strategy's server state (FedAvgM's momentum, FedAdam's moments); the
        keys are the run's own, made again when it resumes, and nothing encrypted outlives a
        round."""
        from simfl.flower_compat.strategy_state import strategy_server_state

        return {"strategy": strategy_server_state(self.inner)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from simfl.flower_compat.strategy_state import restore_strategy_server_state

        restore_strategy_server_state(self.inner, state["strategy"])


def _arrays(reply: Message) -> ArrayRecord:
    return reply.content["arrays"]


def model_plus(sent: ArrayRecord, update: np.ndarray) -> ArrayRecord:
    """``sent`` plus the flat ``update`` (in ``sent``'s order), each array in its dtype."""
    out, offset = {}, 0
    for name, array in sent.items():
        x = array.numpy()
        step = update[offset : offset + x.size].reshape(x.shape)
        out[name] = Array(np.asarray(x.astype(np.float64) + step).astype(x.dtype))
        offset += x.size
    if offset != update.size:
        raise ValueError(f"an encrypted update of {update.size} values for a model of {offset}")
    return ArrayRecord(out)


class HECallback(ServerCallback):
    """Adds each round's HE cost and error bound to its metrics row."""

    def __init__(self, aggregation: HEAggregation) -> None:
        self.aggregation = aggregation

    def after_round(self, state: RoundState) -> CallbackResult:
        he_round = self.aggregation.rounds.pop(state.server_round, None)
        return CallbackResult(he_round.metrics() if he_round is not None else {}, None)
