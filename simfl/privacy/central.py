"""Central (user-level) DP: Flower's strategy wrappers around any built strategy.

Flower's ``DifferentialPrivacy{Server,Client}Side{Fixed,Adaptive}Clipping`` clip each update
(or have the client mod clip it) and add Gaussian noise of std
``noise_multiplier * clipping_norm / num_sampled_clients`` to the aggregate. What
:class:`PrivateAggregation` adds around them:

- seeded noise (Flower draws from numpy's global generator; see ``seeded_numpy_global``);
- uniform weights by default (the DP-FedAvg analysis bounds each client's share by 1/n;
  example weights give a large client a larger share and so a larger sensitivity);
- a :class:`Release` per round recording what really happened (clients aggregated, their
  largest weight share, the norm they were clipped to, the noise std), from which the
  accountant derives the *effective* noise multiplier: when fewer clients reply than were
  sampled the noise, scaled for the sampled count, is smaller relative to each client's share.

Failed replies never reach the wrappers (``FederationLoop.exchange`` filters them; Flower's
wrappers would otherwise skip aggregation altogether).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    Strategy,
)

from simfl.flower_compat.dp import (
    adaptive_clipping_wrapper,
    dp_wrapper_state,
    exact_dp_clipping,
    restore_dp_wrapper_state,
    seeded_numpy_global,
    wrapped_strategy,
)
from simfl.privacy.wrapper import TrainingWrapper
from simfl.schema.privacy import cohort_size
from simfl.seeding import derive_seed

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.schema.privacy import PrivacyConfig

#: The reply metric naming the partition a train reply came from (privacy runs only).
PARTITION_METRIC = "partition-id"


@dataclass(frozen=True)
class Release:
    """One noised aggregate, as it really happened."""

    server_round: int
    sampled: int  # the cohort the noise was scaled for (Flower's num_sampled_clients)
    aggregated: int  # replies that went into the aggregate
    max_weight_share: float  # the largest client's weight / total weight (1/n if uniform)
    clipping_norm: float  # the norm updates were clipped to this round
    noise_std: float  # std of the Gaussian noise added to each coordinate of the aggregate
    count_noise_std: float | None = None  # adaptive clipping: std of the noisy clipped count

    @property
    def update_noise_multiplier(self) -> float:
        """Noise std over the L2 sensitivity of the aggregate to one client (add/remove)."""
        sensitivity = self.clipping_norm * self.max_weight_share
        return self.noise_std / sensitivity if sensitivity > 0 else float("inf")

    @property
    def effective_noise_multiplier(self) -> float:
        """The mechanism's noise multiplier; with adaptive clipping the clipped count is a
        second Gaussian query (Andrew et al. 2021: z = (z_update^-2 + (2 sigma_b)^-2)^-1/2)."""
        z = self.update_noise_multiplier
        if self.count_noise_std is None:
            return z
        if z == 0 or self.count_noise_std == 0:
            return 0.0
        return (z**-2 + (2 * self.count_noise_std) ** -2) ** -0.5


@dataclass
class RoundReplies:
    """The train replies' metrics of one round (each with its partition id)."""

    sampled: int
    metrics: list[dict[str, Any]] = field(default_factory=list)


class PrivateAggregation(TrainingWrapper):
    """Delegates to ``inner`` (a DP wrapper, or a plain strategy for local DP modes), and adds
    seeded noise, optional uniform weights, and a log of replies and releases per round."""

    def __init__(
        self, inner: Strategy, seed: int, uniform_weights: bool, weight_key: str = "num-examples"
    ) -> None:
        super().__init__(inner)
        self.seed, self.uniform_weights = seed, uniform_weights
        self.weight_key = weight_key
        self.replies: dict[int, RoundReplies] = {}
        self.releases: dict[int, Release] = {}
        self._sampled: dict[int, int] = {}

    @property
    def dp(self) -> Any | None:
        """Flower's DP wrapper, if central DP is on."""
        return self.inner if hasattr(self.inner, "noise_multiplier") else None

    @property
    def wrapped(self) -> Strategy:
        """The scenario's own strategy (inside Flower's DP wrapper, if central DP is on)."""
        return wrapped_strategy(self.dp) if self.dp is not None else self.inner

    def state_dict(self) -> dict[str, Any]:
        """What outlives a round here: the wrapped strategy's server state (FedAdam's moments,
        and its own ``state_dict()`` where it has one) and the DP wrapper's clipping norm,
        which adaptive clipping moves. Nothing else carries over: the noise is seeded per
        round, and a round's replies and release are read by the privacy callback in that
        round, before its checkpoint."""
        from simfl.engine.checkpoint import Stateful
        from simfl.flower_compat.strategy_state import strategy_server_state

        wrapped = self.wrapped
        return {
            "strategy": strategy_server_state(wrapped),
            "own": wrapped.state_dict() if isinstance(wrapped, Stateful) else None,
            "dp": dp_wrapper_state(self.dp) if self.dp is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from simfl.flower_compat.strategy_state import restore_strategy_server_state

        restore_strategy_server_state(self.wrapped, state["strategy"])
        if state["own"] is not None:
            self.wrapped.load_state_dict(state["own"])  # type: ignore[attr-defined]
        if state["dp"] is not None:
            restore_dp_wrapper_state(self.dp, state["dp"])

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(self.inner.configure_train(server_round, arrays, config, grid))
        self._sampled[server_round] = len(messages)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        metrics = [dict(reply.content["metrics"]) for reply in replies]
        sampled = self._sampled.pop(server_round, len(replies))
        self.replies[server_round] = RoundReplies(sampled, metrics)
        weights = [float(m.get(self.weight_key, 1.0)) for m in metrics]
        if self.dp is not None and self.uniform_weights:
            for reply in replies:
                reply.content["metrics"][self.weight_key] = 1
            weights = [1.0] * len(replies)
        dp, clipping_norm = self.dp, getattr(self.dp, "clipping_norm", None)
        noise_seed = derive_seed(self.seed, "dp-noise", server_round)
        with seeded_numpy_global(noise_seed), exact_dp_clipping():
            arrays, aggregated = self.inner.aggregate_train(server_round, replies)
        if dp is not None and arrays is not None and replies:
            self.releases[server_round] = Release(
                server_round,
                dp.num_sampled_clients,
                len(replies),
                max(weights) / sum(weights),
                float(clipping_norm),
                dp.noise_multiplier * dp.clipping_norm / dp.num_sampled_clients,
                getattr(dp, "clipped_count_stddev", None),
            )
        return arrays, aggregated


def central_dp_wrapper(strategy: Strategy, privacy: PrivacyConfig, sampled: int) -> Strategy:
    """Flower's wrapper for the scenario's clipping side and rule."""
    if privacy.clipping == "fixed":
        wrapper = (
            DifferentialPrivacyServerSideFixedClipping
            if privacy.clipping_side == "server"
            else DifferentialPrivacyClientSideFixedClipping
        )
        return wrapper(strategy, privacy.noise_multiplier, privacy.clipping_norm, sampled)
    # Flower's adaptive wrapper, its norm moving as Andrew et al. 2021 (Flower's sign is
    # inverted: simfl.flower_compat.dp, adaptive-clipping-norm-sign-inverted).
    wrapper = adaptive_clipping_wrapper(privacy.clipping_side)
    return wrapper(
        strategy,
        privacy.noise_multiplier,
        sampled,
        initial_clipping_norm=privacy.clipping_norm,
        target_clipped_quantile=privacy.target_clipped_quantile,
        clip_norm_lr=privacy.clip_norm_lr,
        clipped_count_stddev=privacy.clipped_count_stddev,
    )


def sampled_per_round(scenario: Scenario) -> int:
    strategy = scenario.strategy
    return cohort_size(scenario.data.num_clients, strategy.fraction_train, strategy.min_train_nodes)


def private_strategy(strategy: Strategy, scenario: Scenario) -> PrivateAggregation:
    """The scenario's strategy with central DP (if asked) and the per-round reply log."""
    privacy = scenario.privacy
    inner = strategy
    if privacy.central:
        inner = central_dp_wrapper(strategy, privacy, sampled_per_round(scenario))
    weight_key = getattr(strategy, "weighted_by_key", "num-examples")
    return PrivateAggregation(inner, scenario.scenario.seed, privacy.uniform_weights, weight_key)
