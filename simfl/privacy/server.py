"""The server's side of privacy: the strategy wrapped for the scenario's privacy mode, and one
server callback that accounts epsilon, enforces the budget and runs the audit at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.server_callbacks import CallbackResult, RoundState
from simfl.privacy.audit import MembershipAudit
from simfl.privacy.central import PARTITION_METRIC, PrivateAggregation, private_strategy

if TYPE_CHECKING:
    import numpy as np
    from flwr.serverapp.strategy import Strategy

    from simfl.engine.plan import RunPlan


def privacy_active(plan: RunPlan) -> bool:
    privacy = plan.scenario.privacy
    return privacy.mode != "none" or privacy.audit.attack != "none"


def accountant_for(mode: str) -> type | None:
    """The accountant class of a privacy mode (None without DP). Imported here, not at module
    level: dp-accounting brings scipy, which a run without privacy never needs."""
    from simfl.privacy.accounting import CentralAccountant, DpsgdAccountant, LocalOutputAccountant

    accountants = {
        "central": CentralAccountant,
        "local-dpsgd": DpsgdAccountant,
        "local-output": LocalOutputAccountant,
    }
    return accountants.get(mode)


class PrivacyCallback:
    """Accounting first (its stop decides whether this is the last round), then the audit of
    the last round's global model."""

    def __init__(
        self,
        plan: RunPlan,
        aggregation: PrivateAggregation,
        test_rows,
        test_labels,
        test_speakers=None,
    ) -> None:
        privacy = plan.scenario.privacy
        self.rounds, self.aggregation = plan.scenario.scenario.rounds, aggregation
        accountant = accountant_for(privacy.mode)
        self.accountant = accountant(aggregation, plan.scenario) if accountant else None
        self.audit = (
            MembershipAudit(plan, test_rows, test_labels, test_speakers)
            if privacy.audit.attack != "none"
            else None
        )

    def after_round(self, state: RoundState) -> CallbackResult:
        result = self.accountant.after_round(state) if self.accountant else CallbackResult()
        metrics = dict(result.metrics)
        if self.audit is not None:
            replies = self.aggregation.replies.get(state.server_round)
            if replies:
                self.audit.saw_training([int(m[PARTITION_METRIC]) for m in replies.metrics])
            if state.server_round >= self.rounds or result.stop is not None:
                metrics |= self.audit.run(state.arrays).metrics()
        return CallbackResult(metrics, result.stop)


def privatize(
    plan: RunPlan,
    strategy: Strategy,
    test_rows: np.ndarray,
    test_labels: np.ndarray,
    test_speakers: np.ndarray | None = None,
) -> tuple[Strategy, list[Any]]:
    """The strategy and server callbacks for the scenario's ``[privacy]`` (unchanged if none)."""
    if not privacy_active(plan):
        return strategy, []
    aggregation = private_strategy(strategy, plan.scenario)
    callback = PrivacyCallback(plan, aggregation, test_rows, test_labels, test_speakers)
    return aggregation, [callback]


def secure_aggregation(scenario: Any, timeout: float) -> Any:
    """The SecAgg+ bridge for the round loop, or None when ``privacy.secagg`` is off."""
    if not scenario.privacy.secagg.enabled:
        return None
    from simfl.privacy.secagg import SecureAggregation

    privacy = scenario.privacy
    unit = privacy.central and privacy.uniform_weights
    return SecureAggregation(privacy.secagg, scenario.scenario.seed, timeout, unit)


def privacy_summary(scenario: Any) -> dict[str, Any] | None:
    """What ``summary.json`` says about privacy: mode, delta and the sampling accounted."""
    privacy = scenario.privacy
    if privacy.mode == "none" and privacy.audit.attack == "none" and not privacy.secagg.enabled:
        return None
    from simfl.privacy.central import sampled_per_round

    out: dict[str, Any] = {"mode": privacy.mode, "delta": privacy.delta}
    if privacy.central:
        m, n = sampled_per_round(scenario), scenario.data.num_clients
        out["sampling"] = (
            f"fixed-size cohort of {m} of {n} clients, sampled without replacement each round; "
            + (
                "accounted as SampledWithoutReplacementDpEvent (RDP, replace-one neighbours)"
                if privacy.accounting == "sampled-without-replacement"
                else "accounted without sampling amplification (RDP, add/remove-one)"
            )
        )
        out["accountant"] = "dp-accounting RdpAccountant"
        out["clipping"] = f"{privacy.clipping} ({privacy.clipping_side} side)"
    elif privacy.mode == "local-dpsgd":
        out["sampling"] = "Poisson sampling of each client's examples at rate batch_size / n"
        out["accountant"] = "opacus RDPAccountant, per client"
    elif privacy.mode == "local-output":
        out["sampling"] = "each participating client releases one noised update per round"
        out["accountant"] = "dp-accounting RdpAccountant, per client"
    out["max_epsilon"] = privacy.max_epsilon
    out["audit"] = privacy.audit.attack
    out["secagg"] = privacy.secagg.enabled
    return out
