"""``[privacy]``: differential privacy, secure aggregation, HE and the membership-inference audit.

One table, so that privacy composes with every strategy and partitioner and sweeps like any
other key (``"privacy.noise_multiplier" = [0.5, 1.0, 2.0]``). The whole section is
hash-neutral: scenarios without ``[privacy]`` keep their hashes.

Modes:

- ``central``: user-level DP of the aggregate with Flower's strategy wrappers
  (``flwr.serverapp.strategy.DifferentialPrivacy{Server,Client}Side{Fixed,Adaptive}Clipping``),
  accounted by :mod:`simfl.privacy.accounting` with Google's ``dp-accounting``.
- ``local-dpsgd``: sample-level DP-SGD inside each client's training, with Opacus.
- ``local-output``: Flower's ``LocalDpMod`` (each client clips and noises its update).

Pure cross-table rules (BatchNorm with Opacus, SecAgg+ thresholds against the cohort) are in
:meth:`PrivacyConfig.check_scenario`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, Field, model_validator

from simfl.schema.base import HASH_NEUTRAL, Section
from simfl.schema.privacy_he import HEConfig, check_he

if TYPE_CHECKING:
    from simfl.config import Scenario

#: Strategies whose server rule needs individual updates (SecAgg+ only reveals their sum).
NOT_A_MEAN = ("fedmedian", "fedtrimmedavg", "krum", "multikrum", "bulyan", "qfedavg")

PrivacyMode = Literal["none", "central", "local-dpsgd", "local-output"]


def cohort_size(num_clients: int, fraction_train: float, min_train_nodes: int) -> int:
    """How many clients Flower's strategies sample per round (``FedAvg.configure_train``)."""
    return max(int(num_clients * fraction_train), min_train_nodes)


class SecAggConfig(Section):
    """``[privacy.secagg]``: Flower's SecAgg+ (``SecAggPlusWorkflow`` + ``secaggplus_mod``)."""

    enabled: bool = False
    num_shares: int = Field(default=3, ge=3)
    reconstruction_threshold: int = Field(default=2, ge=2)
    clipping_range: float = Field(default=8.0, gt=0)
    quantization_range: int = Field(default=4194304, ge=2)
    modulus_range: int = Field(default=4294967296, ge=2)
    #: Probability that a sampled client drops out during the protocol (after sharing keys).
    dropout_probability: float = Field(default=0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _threshold_fits_shares(self) -> SecAggConfig:
        if self.reconstruction_threshold >= self.num_shares:
            raise ValueError(
                f"privacy.secagg.reconstruction_threshold ({self.reconstruction_threshold}) "
                f"must be below privacy.secagg.num_shares ({self.num_shares})"
            )
        return self


class AuditConfig(Section):
    """``[privacy.audit]``: a membership-inference attack on the final global model."""

    #: "lira": offline LiRA (Carlini et al. 2022) with shadow models trained on half of the
    #: held-out speakers (:mod:`simfl.privacy.lira`); non-members come from the other half.
    attack: Literal["none", "loss-threshold", "lira"] = "none"
    #: At most this many members and as many non-members are scored (seeded subsample).
    max_examples: int = Field(default=2000, ge=10)
    #: lira: how many OUT shadow models, and their epochs (default local_epochs x rounds).
    shadow_models: int = Field(default=4, ge=2, json_schema_extra=HASH_NEUTRAL)
    shadow_epochs: int | None = Field(default=None, ge=1, json_schema_extra=HASH_NEUTRAL)


class PrivacyConfig(Section):
    """Differential privacy (central or local), secure aggregation and the privacy audit."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, json_schema_extra=HASH_NEUTRAL)

    mode: PrivacyMode = "none"
    noise_multiplier: float = Field(default=1.0, ge=0.0)
    clipping_norm: float = Field(default=1.0, gt=0.0)
    #: central: where updates are clipped; "client" uses Flower's client mods.
    clipping_side: Literal["server", "client"] = "server"
    clipping: Literal["fixed", "adaptive"] = "fixed"
    # Adaptive clipping (Andrew et al. 2021), Flower's knobs; clipping_norm is the initial norm.
    target_clipped_quantile: float = Field(default=0.5, ge=0.0, le=1.0)
    clip_norm_lr: float = Field(default=0.2, gt=0.0)
    clipped_count_stddev: float | None = Field(default=None, ge=0.0)
    #: central: every reply weighs the same (the DP-FedAvg analysis); false keeps the
    #: strategy's example weights, and the accountant then charges the largest share.
    uniform_weights: bool = True
    delta: float = Field(default=1e-5, gt=0.0, lt=1.0)
    max_epsilon: float | None = Field(default=None, gt=0.0)
    #: central: "sampled-without-replacement" (Flower samples a fixed-size cohort; RDP with
    #: replace-one neighbours) or "no-amplification" (each round a full Gaussian release).
    accounting: Literal["sampled-without-replacement", "no-amplification"] = (
        "sampled-without-replacement"
    )
    #: local-output: LocalDpMod's epsilon per release (its delta is ``delta``).
    local_epsilon: float = Field(default=1.0, gt=0.0)
    #: local-dpsgd: replace BatchNorm with GroupNorm (Opacus' ``ModuleValidator.fix``).
    fix_batch_norm: bool = False
    secagg: SecAggConfig = SecAggConfig()
    he: HEConfig = HEConfig()
    audit: AuditConfig = AuditConfig()

    @property
    def central(self) -> bool:
        return self.mode == "central"

    def check_scenario(self, scenario: Scenario) -> None:
        """Rules against other tables: BatchNorm with Opacus, losses Opacus cannot see, SecAgg."""
        strategy = scenario.strategy
        cohort = cohort_size(
            scenario.data.num_clients, strategy.fraction_train, strategy.min_train_nodes
        )
        if self.mode == "local-dpsgd":
            self._check_dpsgd(scenario)
        if self.central and self.max_epsilon is not None and self.noise_multiplier == 0:
            raise ValueError("privacy.max_epsilon needs privacy.noise_multiplier > 0")
        if self.central and self.clipping == "adaptive" and self.clipped_count_stddev is None:
            limit = cohort / 10  # Flower: clipped_count_stddev = cohort / 20, z < 2 * that
            if self.noise_multiplier >= limit:
                raise ValueError(
                    f"privacy.noise_multiplier ({self.noise_multiplier}) must be below "
                    f"{limit:g} (cohort {cohort} / 10) with adaptive clipping; "
                    "or set privacy.clipped_count_stddev"
                )
        if self.secagg.enabled:
            self._check_secagg(scenario, cohort)
        if self.he.enabled:
            check_he(scenario)

    def _check_dpsgd(self, scenario: Scenario) -> None:
        if scenario.model.has_batch_norm and not self.fix_batch_norm:
            raise ValueError(
                "model.batch_norm = true cannot train with privacy.mode = 'local-dpsgd' "
                "(Opacus needs per-sample gradients); set model.batch_norm = false or "
                "privacy.fix_batch_norm = true (BatchNorm -> GroupNorm)"
            )
        if scenario.strategy.name in ("fedprox", "qfedavg"):
            raise ValueError(
                f"strategy.name = '{scenario.strategy.name}' adds a loss term Opacus' "
                "per-sample gradients would drop; privacy.mode = 'local-dpsgd' allows the "
                "other strategies"
            )
        from simfl import registry  # light: names only

        if registry.MODELS[scenario.model.name].task != "classification":
            raise ValueError(
                f"privacy.mode = 'local-dpsgd' supports classification models, not "
                f"model.name = '{scenario.model.name}'"
            )

    def _check_secagg(self, scenario: Scenario, cohort: int) -> None:
        secagg = self.secagg
        if scenario.strategy.name in NOT_A_MEAN:
            raise ValueError(
                f"privacy.secagg reveals only the sum of updates: strategy.name = "
                f"'{scenario.strategy.name}' needs each update; use a mean-based strategy"
            )
        if secagg.reconstruction_threshold > cohort:
            raise ValueError(
                f"privacy.secagg.reconstruction_threshold ({secagg.reconstruction_threshold}) "
                f"exceeds the cohort size ({cohort} clients sampled per round)"
            )
        if secagg.num_shares > cohort:
            raise ValueError(
                f"privacy.secagg.num_shares ({secagg.num_shares}) exceeds the cohort size "
                f"({cohort} clients sampled per round)"
            )
        if self.central and self.clipping_side == "server":
            raise ValueError(
                "privacy.secagg hides individual updates from the server: central DP needs "
                "privacy.clipping_side = 'client'"
            )
