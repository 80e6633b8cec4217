"""Secure aggregation with Flower's SecAgg+ (``SecAggPlusWorkflow`` + ``secaggplus_mod``).

In Flower 1.42 SecAgg+ exists only on the legacy workflow path: the server workflow drives a
legacy ``flwr.server.strategy.Strategy`` (``configure_fit``/``aggregate_fit``) through a
``LegacyContext``, and the client mod expects legacy ``FitIns``/``FitRes`` records (every legacy
object is built and read in :mod:`simfl.flower_compat.secagg`, assumption
``secaggplus-workflow-drives-a-legacy-strategy``). This bridge runs the protocol inside simfl's
round loop and keeps the rest of the engine as it is:

- the round's cohort is what the Message-API strategy sampled (seeded, as always); the legacy
  strategy the workflow sees hands out exactly those nodes with FitIns built from the messages;
- the workflow's four stages go through simfl's grid (bytes of every protocol message are
  counted, masked vectors and key shares included);
- the unmasked mean comes back as one reply per client that completed the protocol (the same
  mean, each with its own clear-text metrics), so ``aggregate_train`` of any mean-based
  strategy, and central DP's wrappers with client-side clipping, apply to it unchanged;
- a protocol halted below ``reconstruction_threshold`` fails the round with a clear message.

On the client, :func:`client_mods` puts a simulated-dropout mod, Flower's ``secaggplus_mod`` and
a FitIns <-> Message converter around simfl's train handler.

Quantization error: each client scales its weights by ``r_i = round(n_i / W * T) / T``
(``W`` = max_weight, ``T`` = quantization_range) and stochastically rounds them on a grid of
step ``2c / T`` (``c`` = clipping_range); rounding moves each coordinate by less than one step,
so the unmasked mean differs from the exact ``r``-weighted mean by less than
``k * (2c / T) / sum(r_i)`` for ``k`` surviving clients (weights within ``[-c, c]``, no modulus
overflow), and from FedAvg's example-weighted mean by at most that plus the weight rounding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict

from simfl.engine.records import ClientFailure
from simfl.errors import SimflError
from simfl.flower_compat.grid import PARTITION_ID_KEY, message_partition, seeded_sampling
from simfl.flower_compat.secagg import (
    COLLECT_STAGE,
    SECAGG_RECORD,
    STAGE_KEY,
    fitins_content,
    fitres_content,
    legacy_context,
    legacy_fitins,
    legacy_ndarrays,
    secaggplus_workflow,
)
from simfl.seeding import derive_seed

if TYPE_CHECKING:
    from simfl.schema.privacy import SecAggConfig

ARRAY_NAMES = "simfl-array-names"
#: Train config flag: weigh this client's vector 1 in SecAgg+ (central DP's uniform weights).
UNIT_WEIGHT = "simfl-unit-weight"
MAX_WEIGHT = 1000.0
DROPOUT_REASON = "simulated SecAgg+ dropout (privacy.secagg.dropout_probability)"


def quantization_error_bound(secagg: SecAggConfig, ratios: list[float]) -> float:
    """Largest per-coordinate difference between the SecAgg+ mean and the exact mean with
    weights ``ratios`` (see the module docstring)."""
    step = 2 * secagg.clipping_range / secagg.quantization_range
    return len(ratios) * step / sum(ratios)


def error_bound(secagg: SecAggConfig, num_examples: list[float]) -> float:
    """Per-coordinate bound on |SecAgg+ mean - FedAvg's example-weighted mean| for weights
    within ``[-clipping_range, clipping_range]``: quantization plus weight rounding."""
    ratios = [weight_ratio(n, secagg) for n in num_examples]
    exact = [n / sum(num_examples) for n in num_examples]
    rounded = [r / sum(ratios) for r in ratios]
    weights = sum(abs(a - b) for a, b in zip(rounded, exact, strict=True))
    return quantization_error_bound(secagg, ratios) + secagg.clipping_range * weights


def weight_ratio(num_examples: float, secagg: SecAggConfig) -> float:
    """The weight a client's vector really gets in SecAgg+ (``secaggplus_mod``)."""
    target = secagg.quantization_range
    return round(num_examples / MAX_WEIGHT * target) / target


def wire_bytes(messages: list[Message]) -> int:
    """Array payload (as simfl counts it everywhere) plus the bytes SecAgg+ carries in config
    records (keys, shares, masked vectors)."""
    from simfl.engine.server_app import message_bytes

    total = message_bytes(messages)
    for message in messages:
        if message.has_error():
            continue
        for record in message.content.config_records.values():
            for value in record.values():
                if isinstance(value, bytes):
                    total += len(value)
                elif isinstance(value, list):
                    total += sum(len(v) for v in value if isinstance(v, bytes))
    return total


class CountingGrid:
    """simfl's grid, counting the bytes of every protocol message each way."""

    def __init__(self, grid: Any) -> None:
        self.grid, self.down, self.up = grid, 0, 0
        self.errors: dict[int, str] = {}  # node -> error reply (the workflow only logs them)

    def get_node_ids(self) -> list[int]:
        return self.grid.get_node_ids()

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> list[Message]:
        messages = list(messages)
        self.down += wire_bytes(messages)
        replies = list(self.grid.send_and_receive(messages, timeout=timeout or 600.0))
        self.up += wire_bytes(replies)
        self.errors |= {r.metadata.src_node_id: r.error.reason for r in replies if r.has_error()}
        return replies


@dataclass
class _Proxy:
    """What the SecAgg+ workflow needs of a legacy ClientProxy: its node id."""

    node_id: int


@dataclass
class LegacyCohort:
    """The legacy strategy the workflow drives: it hands out the cohort simfl sampled and
    keeps the unmasked mean instead of aggregating."""

    messages: list[Message]
    unit_weights: bool = False
    results: list[Any] = field(default_factory=list)
    mean: list[np.ndarray] | None = None

    def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> list:
        out = []
        for message in self.messages:
            arrays: ArrayRecord = message.content["arrays"]
            config = dict(message.content["config"])
            config[ARRAY_NAMES] = "\n".join(arrays.keys())  # legacy Parameters have no names
            config[UNIT_WEIGHT] = self.unit_weights
            fitins = legacy_fitins(arrays.to_numpy_ndarrays(), config)
            out.append((_Proxy(message.metadata.dst_node_id), fitins))
        return out

    def aggregate_fit(self, server_round: int, results: list, failures: list) -> tuple:
        self.results = results
        if results:
            self.mean = legacy_ndarrays(results[0][1].parameters)
        return results[0][1].parameters if results else None, {}


class SecureAggregation:
    """Runs a round's training exchange through SecAgg+ (see the module docstring)."""

    def __init__(
        self, secagg: SecAggConfig, seed: int, timeout: float, unit_weights: bool = False
    ) -> None:
        self.secagg, self.seed, self.timeout = secagg, seed, timeout
        self.unit_weights = unit_weights  # central DP's uniform weights, inside the protocol
        self.last: dict[str, float] = {}

    def workflow(self) -> Any:
        return secaggplus_workflow(
            num_shares=self.secagg.num_shares,
            reconstruction_threshold=self.secagg.reconstruction_threshold,
            max_weight=MAX_WEIGHT,
            clipping_range=self.secagg.clipping_range,
            quantization_range=self.secagg.quantization_range,
            modulus_range=self.secagg.modulus_range,
            timeout=self.timeout,
        )

    def exchange(
        self, server_round: int, messages: list[Message], grid: Any
    ) -> tuple[list[Message], list[ClientFailure]]:
        """The protocol for ``messages``' cohort; one reply (the mean) per surviving client."""
        if not messages:
            return [], []
        cohort = LegacyCohort(messages, self.unit_weights)
        reference: ArrayRecord = messages[0].content["arrays"]
        context = legacy_context(server_round, reference, cohort)
        start = time.perf_counter()
        with (
            grid.addressed_by_partition() as by_partition,
            seeded_sampling(derive_seed(self.seed, "secagg-neighbours", server_round)),
        ):
            counting = CountingGrid(by_partition)
            self.workflow()(counting, context)
        self.last = {
            "secagg_seconds": time.perf_counter() - start,
            "secagg_bytes_down": counting.down,
            "secagg_bytes_up": counting.up,
        }
        if cohort.mean is None:
            crashed = [e for e in counting.errors.values() if DROPOUT_REASON not in e]
            raise SimflError(
                f"round {server_round}: SecAgg+ could not finish: fewer than "
                f"privacy.secagg.reconstruction_threshold ({self.secagg.reconstruction_threshold})"
                f" of a client's neighbours took part (cohort {len(messages)}, "
                f"{len(counting.errors)} dropped or failed)"
                + (f"; first client error: {crashed[0]}" if crashed else "")
            )
        by_node = {m.metadata.dst_node_id: m for m in messages}
        survived = {proxy.node_id: fitres for proxy, fitres in cohort.results}
        self.last["secagg_clients_dropped"] = len(messages) - len(survived)
        sizes = [float(fitres.num_examples) for fitres in survived.values()]
        self.last["secagg_error_bound"] = error_bound(self.secagg, sizes)
        mean = {
            key: np.asarray(value).astype(reference[key].dtype)
            for key, value in zip(reference.keys(), cohort.mean, strict=True)
        }
        replies = []  # in partition order, as always (nodes here are partitions)
        for node in sorted(survived):
            fitres = survived[node]
            metrics = MetricRecord({**fitres.metrics, "num-examples": int(fitres.num_examples)})
            content = RecordDict(
                {"arrays": ArrayRecord({k: Array(v) for k, v in mean.items()}), "metrics": metrics}
            )
            replies.append(Message(content=content, reply_to=by_node[node]))
        failures = [
            ClientFailure(
                server_round,
                "train",
                node,
                node,
                counting.errors.get(node, "dropped out of the SecAgg+ protocol"),
            )
            for node in sorted(set(by_node) - set(survived))
        ]
        return replies, failures


# --------------------------------------------------------------------------- client side


def dropout_mod(secagg: SecAggConfig, seed: int) -> Any:
    """Simulates a client dropping out after sharing its keys (before sending its masked
    vector), with ``dropout_probability``, seeded per client and round."""
    from flwr.app import Error

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        configs = message.content.config_records.get(SECAGG_RECORD)
        if configs is not None and configs.get(STAGE_KEY) == COLLECT_STAGE:
            client = message_partition(message)
            draw = np.random.default_rng(
                derive_seed(seed, "secagg-dropout", client, message.metadata.group_id)
            ).random()
            if draw < secagg.dropout_probability:
                return Message(Error(code=0, reason=DROPOUT_REASON), reply_to=message)
        return call_next(message, context)

    return mod


def fitins_bridge_mod(message: Message, context: Context, call_next: Any) -> Message:
    """Legacy FitIns in, simfl's train message through the inner handler, FitRes out."""
    from flwr.app import ConfigRecord

    partition = message_partition(message)  # in the routing config, beside the legacy records
    ndarrays, config = fitins_content(message.content)
    config[PARTITION_ID_KEY] = partition
    names = str(config.pop(ARRAY_NAMES)).split("\n")
    unit_weight = bool(config.pop(UNIT_WEIGHT, False))
    arrays = ArrayRecord({name: Array(a) for name, a in zip(names, ndarrays, strict=True)})
    message.content = RecordDict({"arrays": arrays, "config": ConfigRecord(config)})
    reply = call_next(message, context)
    if reply.has_error():
        return reply
    metrics = dict(reply.content["metrics"])
    content = fitres_content(
        reply.content["arrays"].to_numpy_ndarrays(),
        # Equal weights at SecAgg+'s full weight: a weight of 1 would scale every vector by
        # 1 / max_weight before quantization and lose three digits of precision.
        int(MAX_WEIGHT) if unit_weight else int(metrics.get("num-examples", 1)),
        metrics,
    )
    return Message(content, reply_to=message)
