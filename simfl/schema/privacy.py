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
    """Aggregate with SecAgg+: the server learns only the sum of the masked updates. Needs a
    mean-based strategy and no ``[privacy.he]``; central DP then needs client-side clipping."""
    num_shares: int = Field(default=3, ge=3)
    """Shares each client's private key is split into (one kept, one sent to each neighbour):
    more tolerate more dropouts at a higher cost; at most the cohort (clients per round)."""
    reconstruction_threshold: int = Field(default=2, ge=2)
    """Shares needed to reconstruct a private key, below ``num_shares`` and at most the cohort:
    higher is more private, less tolerant of dropouts; fewer survivors fail the round."""
    clipping_range: float = Field(default=8.0, gt=0)
    """Bound c: every weight is clipped to [−c, c] before quantization."""
    quantization_range: int = Field(default=4194304, ge=2)
    """Quantization levels T over [−c, c]: stochastic rounding moves a coordinate by less than
    one step 2c / T (each round reports the resulting ``secagg_error_bound``)."""
    modulus_range: int = Field(default=4294967296, ge=2)
    """Masks are drawn from [0, modulus_range − 1] and sums taken modulo it: a power of 2,
    larger than ``quantization_range``."""
    dropout_probability: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Chance that a sampled client drops out during the protocol after sharing its keys
    (simulated, seeded per client and round)."""

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

    attack: Literal["none", "loss-threshold", "lira"] = "none"
    """Membership-inference attack run after the last round: ``loss-threshold`` (Yeom et al.
    2018) scores clips by the model's loss; ``lira``: offline LiRA (Carlini et al. 2022) with
    shadow models trained on half of the held-out speakers, non-members from the other half.
    Reports AUC and TPR at 1% FPR; ``none``: no audit."""
    max_examples: int = Field(default=2000, ge=10)
    """At most this many members (training clips of clients that trained) and as many
    non-members (held-out speakers' clips) are scored, a seeded subsample."""
    shadow_models: int = Field(default=4, ge=2, json_schema_extra=HASH_NEUTRAL)
    """``lira``: OUT shadow models, trained centrally without any scored clip, whose losses
    model the non-member distribution."""
    shadow_epochs: int | None = Field(default=None, ge=1, json_schema_extra=HASH_NEUTRAL)
    """``lira``: training epochs of each shadow model; unset: ``train.local_epochs`` ×
    ``scenario.rounds``."""


class PrivacyConfig(Section):
    """Differential privacy (central or local), secure aggregation and the privacy audit."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, json_schema_extra=HASH_NEUTRAL
    )

    mode: PrivacyMode = "none"
    """Differential privacy: ``central`` (user-level, Flower's DP strategy wrappers),
    ``local-dpsgd`` (sample-level DP-SGD in each client, Opacus), ``local-output`` (Flower's
    ``LocalDpMod`` noises each update) or ``none``."""
    noise_multiplier: float = Field(default=1.0, ge=0.0)
    """Gaussian noise over sensitivity: ``central`` adds std noise_multiplier ×
    ``clipping_norm`` / sampled clients to the mean; ``local-dpsgd`` is Opacus' multiplier.
    Unused by ``local-output``."""
    clipping_norm: float = Field(default=1.0, gt=0.0)
    """L2 clipping norm: of each update (``central``, the initial norm when adaptive;
    ``local-output``) or of each per-sample gradient (``local-dpsgd``)."""
    clipping_side: Literal["server", "client"] = "server"
    """``central``: where updates are clipped, by the server's wrapper or by Flower's client
    mods; SecAgg+ and HE need ``client``."""
    clipping: Literal["fixed", "adaptive"] = "fixed"
    """``central``: a fixed ``clipping_norm``, or adaptive clipping (Andrew et al. 2021) that
    moves the norm towards ``target_clipped_quantile`` each round."""
    target_clipped_quantile: float = Field(default=0.5, ge=0.0, le=1.0)
    """Adaptive clipping: the share of updates the norm aims to clip; it grows while more than
    this share is clipped and shrinks while fewer are."""
    clip_norm_lr: float = Field(default=0.2, gt=0.0)
    """Adaptive clipping: the norm's learning rate, C ← C · exp(lr · (clipped share − target))
    each round."""
    clipped_count_stddev: float | None = Field(default=None, ge=0.0)
    """Adaptive clipping: noise std of the clipped-update count; unset: Flower's cohort / 20,
    which needs ``noise_multiplier`` below cohort / 10."""
    uniform_weights: bool = True
    """``central``: every reply weighs the same (the DP-FedAvg analysis); false keeps the
    strategy's example weights, and the accountant then charges the largest share."""
    delta: float = Field(default=1e-5, gt=0.0, lt=1.0)
    """Target δ of the reported epsilon (``central``, ``local-dpsgd``) and ``LocalDpMod``'s δ
    per release (``local-output``)."""
    max_epsilon: float | None = Field(default=None, gt=0.0)
    """``central``: stop the run (status ``completed``, the stop named) before a round could
    push epsilon above this; unset: no budget. Needs ``noise_multiplier`` > 0."""
    accounting: Literal["sampled-without-replacement", "no-amplification"] = (
        "sampled-without-replacement"
    )
    """``central``: ``sampled-without-replacement`` (Flower samples a fixed-size cohort; RDP
    with replace-one neighbours) or ``no-amplification`` (each round a full Gaussian release)."""
    local_epsilon: float = Field(default=1.0, gt=0.0)
    """``local-output``: ``LocalDpMod``'s epsilon per release (its δ is ``delta``); releases
    compose under RDP into each client's reported epsilon."""
    fix_batch_norm: bool = False
    """``local-dpsgd``: replace BatchNorm with GroupNorm (Opacus' ``ModuleValidator.fix``);
    without it a BatchNorm model is refused."""
    secagg: SecAggConfig = SecAggConfig()
    """``[privacy.secagg]``: secure aggregation with Flower's SecAgg+."""
    he: HEConfig = HEConfig()
    """``[privacy.he]``: homomorphic-encryption aggregation with CKKS (TenSEAL)."""
    audit: AuditConfig = AuditConfig()
    """``[privacy.audit]``: membership-inference audit of the final global model."""

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
