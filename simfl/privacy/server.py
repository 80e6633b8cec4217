"""The server's side of privacy: one server callback that accounts epsilon, enforces the budget
and runs the audit at the end, and what ``summary.json`` says about privacy. The strategy is
wrapped for the scenario's privacy mode by :mod:`simfl.privacy.feature`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.server_callbacks import CallbackResult, RoundState, ServerCallback
from simfl.privacy.audit import MembershipAudit
from simfl.privacy.central import PARTITION_METRIC, PrivateAggregation

if TYPE_CHECKING:
    from simfl.engine.plan import RunPlan


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


class PrivacyCallback(ServerCallback):
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

    def state_dict(self) -> dict[str, Any]:
        """The accountant's state and the audit's members so far (each None without one)."""
        return {
            "accountant": self.accountant.state_dict() if self.accountant else None,
            "audit": self.audit.state_dict() if self.audit else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.accountant is not None:
            self.accountant.load_state_dict(state["accountant"])
        if self.audit is not None:
            self.audit.load_state_dict(state["audit"])

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
