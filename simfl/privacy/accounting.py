"""Privacy accounting as server callbacks: epsilon after every round, and the budget stop.

Central DP uses Google's ``dp-accounting`` (the package ``flwr[dp]`` brings) on the releases
that really happened (:class:`simfl.privacy.central.Release`). Flower samples a fixed-size
cohort of ``m`` of the ``N`` clients without replacement each round, so the default event is
``SampledWithoutReplacementDpEvent(N, m, Gaussian)`` under replace-one neighbours, whose
sensitivity is twice the add/remove one (a client's clipped update replaced by another), hence
a Gaussian noise multiplier of ``z_effective / 2``; ``accounting = "no-amplification"`` counts
each round as a full Gaussian release of ``z_effective`` under add/remove-one neighbours.

Local DP-SGD uses Opacus' RDP accountant per client over the steps it really took, at the
sample rate it really used (Poisson sampling of its examples), and reports mean and max over
the clients that have trained so far.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import dp_accounting
from dp_accounting.rdp import RdpAccountant

from simfl.engine.server_callbacks import CallbackResult, RoundState
from simfl.privacy.central import PARTITION_METRIC, PrivateAggregation, Release
from simfl.privacy.dpsgd import DPSGD_SAMPLE_RATE, DPSGD_STEPS

if TYPE_CHECKING:
    from simfl.config import Scenario

NeighborRel = dp_accounting.NeighboringRelation


def central_event(
    release_noise_multiplier: float, population: int, sampled: int, method: str
) -> dp_accounting.DpEvent:
    """The DpEvent of one round of central DP (see the module docstring)."""
    if method == "no-amplification":
        return dp_accounting.GaussianDpEvent(release_noise_multiplier)
    return dp_accounting.SampledWithoutReplacementDpEvent(
        population, sampled, dp_accounting.GaussianDpEvent(release_noise_multiplier / 2)
    )


def neighbouring_relation(method: str) -> NeighborRel:
    if method == "no-amplification":
        return NeighborRel.ADD_OR_REMOVE_ONE
    return NeighborRel.REPLACE_ONE


def epsilon_of(events: list[dp_accounting.DpEvent], method: str, delta: float) -> float:
    """Epsilon at ``delta`` of the composition of ``events`` (RDP accountant)."""
    if not events:
        return 0.0
    if any(_zero_noise(event) for event in events):
        return math.inf
    accountant = RdpAccountant(neighboring_relation=neighbouring_relation(method))
    accountant.compose(dp_accounting.ComposedDpEvent(events))
    return float(accountant.get_epsilon(delta))


def _zero_noise(event: dp_accounting.DpEvent) -> bool:
    inner = getattr(event, "event", event)
    return getattr(inner, "noise_multiplier", 1.0) == 0


class CentralAccountant:
    """Adds ``epsilon`` (at ``privacy.delta``) after every round and stops before
    ``privacy.max_epsilon`` would be exceeded.

    The stop looks one round ahead at the worst case the run allows: ``min_train_nodes``
    replies (fewest replies, least noise per client share) at the current clipping norm.
    Metrics: ``epsilon``, ``dp_noise_std``, ``dp_clipping_norm``, ``dp_clients_aggregated``,
    ``dp_effective_noise_multiplier`` (below ``noise_multiplier`` when clients dropped out).
    """

    def __init__(self, aggregation: PrivateAggregation, scenario: Scenario) -> None:
        self.aggregation, self.privacy = aggregation, scenario.privacy
        self.population = scenario.data.num_clients
        self.min_replies = max(1, scenario.strategy.min_train_nodes)
        self.releases: list[Release] = []  # every release so far, in order

    @property
    def events(self) -> list[dp_accounting.DpEvent]:
        """The DpEvents composed so far: one per release."""
        return [self.event(release) for release in self.releases]

    def state_dict(self) -> dict[str, Any]:
        """The releases accounted so far, as plain values (their events are derived)."""
        from simfl.engine.checkpoint import plain

        return {"releases": [plain(dataclasses.asdict(release)) for release in self.releases]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.releases = [Release(**release) for release in state["releases"]]

    def event(self, release: Release) -> dp_accounting.DpEvent:
        return central_event(
            release.effective_noise_multiplier,
            self.population,
            release.sampled,
            self.privacy.accounting,
        )

    def epsilon(self, events: list[dp_accounting.DpEvent]) -> float:
        return epsilon_of(events, self.privacy.accounting, self.privacy.delta)

    def worst_next_release(self, server_round: int) -> Release | None:
        dp = self.aggregation.dp
        if dp is None:
            return None
        sampled = dp.num_sampled_clients
        replies = min(self.min_replies, sampled)
        share = 1 / replies if self.privacy.uniform_weights else 1.0
        noise_std = dp.noise_multiplier * dp.clipping_norm / sampled
        count_std = getattr(dp, "clipped_count_stddev", None)
        return Release(
            server_round + 1, sampled, replies, share, dp.clipping_norm, noise_std, count_std
        )

    def after_round(self, state: RoundState) -> CallbackResult:
        metrics: dict[str, float] = {}
        release = self.aggregation.releases.get(state.server_round)
        if release is not None:
            self.releases.append(release)
            metrics = {
                "dp_noise_std": release.noise_std,
                "dp_clipping_norm": release.clipping_norm,
                "dp_clients_aggregated": release.aggregated,
                "dp_effective_noise_multiplier": release.effective_noise_multiplier,
            }
        epsilon = self.epsilon(self.events)
        metrics["epsilon"] = epsilon
        stop = None
        budget = self.privacy.max_epsilon
        worst = self.worst_next_release(state.server_round)
        if budget is not None and worst is not None:
            ahead = self.epsilon([*self.events, self.event(worst)])
            if ahead > budget:
                stop = (
                    f"privacy budget: round {state.server_round + 1} could reach epsilon "
                    f"{ahead:.4g} > privacy.max_epsilon {budget:g} (spent {epsilon:.4g})"
                )
        return CallbackResult(metrics, stop)


class ClientAccountant:
    """Per-client epsilon of a local DP mode, over the rounds each client really trained in;
    reported as mean and max over the clients that have trained so far."""

    def __init__(self, aggregation: PrivateAggregation, scenario: Scenario) -> None:
        self.aggregation, self.privacy = aggregation, scenario.privacy
        self.history: dict[int, list[dict]] = {}  # partition -> its replies' metrics, in order

    def state_dict(self) -> dict[str, Any]:
        """Every client's reply metrics so far (Opacus' history and the release counts are
        derived from them), as plain values."""
        from simfl.engine.checkpoint import plain

        return {"history": plain(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = state["history"]

    def client_epsilon(self, rounds: list[dict]) -> float:
        raise NotImplementedError

    def after_round(self, state: RoundState) -> CallbackResult:
        replies = self.aggregation.replies.get(state.server_round)
        for metrics in replies.metrics if replies else []:
            self.history.setdefault(int(metrics[PARTITION_METRIC]), []).append(metrics)
        epsilons = [self.client_epsilon(rounds) for rounds in self.history.values()] or [0.0]
        return CallbackResult(
            {
                "epsilon_client_mean": sum(epsilons) / len(epsilons),
                "epsilon_client_max": max(epsilons),
                "dp_clients_trained": len(self.history),
            }
        )


class DpsgdAccountant(ClientAccountant):
    """Local DP-SGD: Opacus' RDP accountant over the client's (noise multiplier, sample rate,
    steps) of every round it trained in, as the client reported them."""

    def client_epsilon(self, rounds: list[dict]) -> float:
        from opacus.accountants import RDPAccountant

        accountant = RDPAccountant()
        accountant.history = [
            (self.privacy.noise_multiplier, float(m[DPSGD_SAMPLE_RATE]), int(m[DPSGD_STEPS]))
            for m in rounds
        ]
        return float(accountant.get_epsilon(self.privacy.delta))


def local_output_noise_multiplier(local_epsilon: float, delta: float) -> float:
    """``LocalDpMod``'s std over its sensitivity: sqrt(2 ln(1.25 / delta)) / epsilon."""
    return math.sqrt(2 * math.log(1.25 / delta)) / local_epsilon


class LocalOutputAccountant(ClientAccountant):
    """Flower's ``LocalDpMod``: each release is a Gaussian mechanism on the clipped update
    (sensitivity = clipping norm); a client's releases compose under RDP (tighter than
    summing ``local_epsilon`` over its rounds)."""

    def client_epsilon(self, rounds: list[dict]) -> float:
        z = local_output_noise_multiplier(self.privacy.local_epsilon, self.privacy.delta)
        event = dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(z), len(rounds))
        accountant = RdpAccountant()
        accountant.compose(event)
        return float(accountant.get_epsilon(self.privacy.delta))
