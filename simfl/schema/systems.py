"""``[systems]``: how fast, how connected, how available and how honest each client is.

Hash-neutral as a whole: a scenario without ``[systems]`` (or with every default) keeps its
hash, and runs exactly as before. Everything here is pure schema; trace files are read and
checked when the run is prepared (:mod:`simfl.systems.traces`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, Field, model_validator

from simfl.schema.base import HASH_NEUTRAL, Section

if TYPE_CHECKING:
    from simfl.config import Scenario


class DeviceTier(Section):
    """One device class of ``distribution = "tiers"``; ``share`` of the clients have it."""

    share: float = Field(gt=0.0)
    """Relative share of the clients in this tier (shares are normalised; clients are dealt
    to tiers by a seeded permutation)."""
    ms_per_sample: float = Field(ge=0.0)
    """This tier's training time in milliseconds per sample and epoch."""
    down_kbps: float = Field(gt=0.0)
    """This tier's download bandwidth in kbit/s."""
    up_kbps: float = Field(gt=0.0)
    """This tier's upload bandwidth in kbit/s."""
    latency_ms: float = Field(default=0.0, ge=0.0)
    """This tier's network latency in milliseconds, added once per round."""


class DevicesConfig(Section):
    """``[systems.devices]``: compute (ms per training sample for this scenario's model and
    batch size, one epoch) and network (kbit/s down and up, latency per round), per client.

    ``fixed``: every client has these values; ``lognormal``: the values are medians and each
    client's is ``median · exp(sigma · z)`` (``sigma`` for compute, ``network_sigma`` for both
    bandwidths); ``tiers``: clients are dealt to ``tiers`` by share; ``trace``: a CSV, Parquet
    or JSON file (columns ``client, ms_per_sample, down_kbps, up_kbps, latency_ms``) or a
    FedScale device-capacity pickle (plain data only).
    """

    distribution: Literal["fixed", "lognormal", "tiers", "trace"] = "fixed"
    """How client devices differ: ``fixed`` (all alike), ``lognormal`` (seeded spread around
    the medians below), ``tiers`` (``[[systems.devices.tiers]]``) or ``trace`` (a file)."""
    ms_per_sample: float = Field(default=0.0, ge=0.0)
    """Training milliseconds per sample and epoch for this scenario's model and batch size (the
    median under ``lognormal``); 0: training takes no simulated time."""
    down_kbps: float = Field(default=1e9, gt=0.0)
    """Download bandwidth in kbit/s (the median under ``lognormal``); the default makes
    transfers practically free."""
    up_kbps: float = Field(default=1e9, gt=0.0)
    """Upload bandwidth in kbit/s (the median under ``lognormal``)."""
    latency_ms: float = Field(default=0.0, ge=0.0)
    """Network latency in milliseconds added once to every client's round (the same for all
    clients under ``lognormal``)."""
    sigma: float = Field(default=0.0, ge=0.0, le=5.0)
    """``lognormal``: spread of compute speed, each client's ``ms_per_sample`` being
    median · exp(sigma · z), z ~ N(0, 1); 0: no spread."""
    network_sigma: float = Field(default=0.0, ge=0.0, le=5.0)
    """``lognormal``: the same spread for both bandwidths, each with its own z; 0: none."""
    tiers: list[DeviceTier] = Field(default_factory=list)
    """``tiers``: the device classes, at least one."""
    trace: str = ""
    """``trace``: path of a CSV, Parquet or JSON file (columns ``client, ms_per_sample,
    down_kbps, up_kbps, latency_ms``, at least one row per client) or a FedScale device pickle."""

    @model_validator(mode="after")
    def _inputs_present(self) -> DevicesConfig:
        if self.distribution == "tiers" and not self.tiers:
            raise ValueError('distribution = "tiers" needs at least one [[systems.devices.tiers]]')
        if self.distribution == "trace" and not self.trace:
            raise ValueError('distribution = "trace" needs systems.devices.trace (a file path)')
        return self


class AvailabilityConfig(Section):
    """``[systems.availability]``: when each client is online (simulated time).

    ``always``; ``diurnal``: online for ``on_fraction`` of every ``period_h``, each client at
    its own seeded phase; ``sessions``: alternating online/offline spells, exponential with
    means ``mean_on_h`` / ``mean_off_h``; ``trace``: a CSV/Parquet/JSON file of online
    intervals (``client, start_s, end_s``) or a FedScale behaviour pickle, repeating every
    ``period_h`` when that is set (FedScale's own period otherwise).
    """

    kind: Literal["always", "diurnal", "sessions", "trace"] = "always"
    """Availability model: ``always`` online, ``diurnal`` daily cycles, ``sessions`` random
    on/off spells, or ``trace`` (a file of online intervals)."""
    period_h: float = Field(default=24.0, gt=0.0)
    """Cycle length in simulated hours: ``diurnal``'s period, and the period a table ``trace``
    repeats with (a FedScale pickle repeats with its own ``finish_time``)."""
    on_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    """``diurnal``: share of every period a client is online, at its own seeded phase; 1:
    always online."""
    mean_on_h: float = Field(default=2.0, gt=0.0)
    """``sessions``: mean length of an online spell in simulated hours (exponential)."""
    mean_off_h: float = Field(default=2.0, gt=0.0)
    """``sessions``: mean length of an offline spell in simulated hours (exponential)."""
    trace: str = ""
    """``trace``: path of a CSV, Parquet or JSON file of online intervals (``client, start_s,
    end_s``) or a FedScale behaviour pickle."""

    @model_validator(mode="after")
    def _trace_present(self) -> AvailabilityConfig:
        if self.kind == "trace" and not self.trace:
            raise ValueError('kind = "trace" needs systems.availability.trace (a file path)')
        return self


class SystemFaultsConfig(Section):
    """``[systems.faults]``: per sampled client and round (seeded), the chance that it crashes
    in each phase it is asked for (``client_crash_probability``: training and evaluation),
    crashes before or after training, hangs (never answers: dropped at the deadline or
    ``resources.round_timeout_s``) or runs ``slowdown_factor`` times slower.

    ``[faults] client_crash_probability`` is read as this key's alias (:mod:`simfl.config`),
    and a scenario's hash holds the value where that table puts it, so both spellings of a
    scenario have one hash."""

    client_crash_probability: float = Field(
        default=0.0, ge=0.0, le=1.0, json_schema_extra=HASH_NEUTRAL
    )
    """Chance that a sampled client crashes in each phase it is asked for (training and
    evaluation), seeded per client, round and phase; ``[faults] client_crash_probability`` is
    the same key."""
    crash_before_train: float = Field(default=0.0, ge=0.0, le=1.0)
    """Chance that a sampled client crashes before local training (no update that round)."""
    crash_after_train: float = Field(default=0.0, ge=0.0, le=1.0)
    """Chance that a sampled client crashes after training, its work lost before it replies."""
    hang: float = Field(default=0.0, ge=0.0, le=1.0)
    """Chance that a sampled client never answers: dropped at ``deadline_s`` or, without one,
    at ``resources.round_timeout_s`` of simulated time."""
    slowdown_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    """Chance that a sampled client's training runs ``slowdown_factor`` times slower that round."""
    slowdown_factor: float = Field(default=1.0, ge=1.0)
    """How many times slower a slowed-down client trains; 1: no slowdown."""


class AttackConfig(Section):
    """``[systems.attack]``: ``fraction`` of the clients (a seeded, fixed set) are Byzantine.

    ``sign-flip`` sends w - scale·Δ, ``scale`` sends w + scale·Δ (Δ: the honest update),
    ``gaussian`` sends w + N(0, noise_std²), ``label-flip`` trains on label C-1-y.
    """

    kind: Literal["none", "sign-flip", "scale", "gaussian", "label-flip"] = "none"
    """What Byzantine clients send (w: received weights, Δ: the honest update): ``sign-flip``
    w − scale·Δ, ``scale`` w + scale·Δ, ``gaussian`` w + N(0, noise_std²); ``label-flip``
    trains on label C − 1 − y. ``none``: no attack."""
    fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Share of the clients that are Byzantine, a seeded set fixed for the run; must be above 0
    when ``kind`` is set."""
    scale: float = Field(default=1.0, gt=0.0)
    """Factor on the honest update Δ for ``sign-flip`` and ``scale``."""
    noise_std: float = Field(default=0.1, gt=0.0)
    """Standard deviation of the Gaussian noise a ``gaussian`` attacker adds to the weights."""


class SystemsConfig(Section):
    """``[systems]``: devices, availability, deadlines, faults and attacks (see the tables).

    ``over_selection = o`` samples ⌈(1+o)·K⌉ clients and keeps the first K to finish
    (FedScale's over-commitment); ``deadline_s`` drops every client not finished by then
    (0: no deadline), unless ``partial_work``: then a client that would miss it trains only
    the local steps that fit (FedProx's setting) and is kept.
    ``target_accuracy`` sets the summary's time to target (central accuracy, simulated hours);
    ``time_budget_h`` stops the run once the simulated clock passes it (0: no budget).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, json_schema_extra=HASH_NEUTRAL
    )

    devices: DevicesConfig = DevicesConfig()
    """``[systems.devices]``: each client's compute speed and network."""
    availability: AvailabilityConfig = AvailabilityConfig()
    """``[systems.availability]``: when each client is online in simulated time."""
    over_selection: float = Field(default=0.0, ge=0.0, le=10.0)
    """Over-commitment o: sample ⌈(1+o)·K⌉ clients and keep the first K to finish (FedScale);
    at most ``data.num_clients`` may be sampled. 0: keep every sampled client."""
    deadline_s: float = Field(default=0.0, ge=0.0)
    """Simulated seconds after which a round ends and unfinished clients are dropped; 0: no
    deadline (``resources.round_timeout_s`` bounds the round)."""
    partial_work: bool = Field(default=False, json_schema_extra=HASH_NEUTRAL)
    """A client that would miss ``deadline_s`` trains only the minibatch steps that fit and is
    kept (FedProx's setting); needs a deadline, not with FedBuff or local DP-SGD."""
    faults: SystemFaultsConfig = SystemFaultsConfig()
    """``[systems.faults]``: seeded crashes, hangs and slowdowns of sampled clients."""
    attack: AttackConfig = AttackConfig()
    """``[systems.attack]``: Byzantine clients and what they send."""
    target_accuracy: float = Field(default=0.5, gt=0.0, le=1.0)
    """Central accuracy whose first crossing the summary reports in simulated hours
    (``sim_hours_to_target``)."""
    time_budget_h: float = Field(default=0.0, ge=0.0)
    """Stop the run once the simulated clock passes this many hours; 0: no budget."""

    @property
    def enabled(self) -> bool:
        """Whether the scenario simulates systems: a ``[systems]`` table other than the
        defaults, crashes in any phase (``faults.client_crash_probability``) aside."""
        return self.without_phase_crashes() != SystemsConfig()

    def without_phase_crashes(self) -> SystemsConfig:
        """This table with ``faults.client_crash_probability`` at its default."""
        faults = self.faults.model_copy(update={"client_crash_probability": 0.0})
        return self.model_copy(update={"faults": faults})

    def check_scenario(self, scenario: Scenario) -> None:
        if self.partial_work and self.deadline_s <= 0.0:
            raise ValueError("systems.partial_work needs a deadline: set systems.deadline_s > 0")
        if self.partial_work and scenario.strategy.name == "fedbuff":
            raise ValueError("systems.partial_work is for synchronous rounds: not with fedbuff")
        if self.partial_work and scenario.privacy.mode == "local-dpsgd":
            raise ValueError(
                "systems.partial_work counts minibatch steps; DP-SGD's Poisson batches are not "
                "limited by it: privacy.mode local-dpsgd cannot run with it"
            )
        if self.attack.kind != "none" and self.attack.fraction == 0.0:
            raise ValueError("systems.attack.kind is set but systems.attack.fraction is 0")
        if self.over_selection > 0.0:
            strategy, num_clients = scenario.strategy, scenario.data.num_clients
            k = min(
                num_clients,
                max(int(num_clients * strategy.fraction_train), strategy.min_train_nodes),
            )
            wanted = over_selected(k, self.over_selection)
            if wanted > scenario.data.num_clients:
                raise ValueError(
                    f"systems.over_selection = {self.over_selection} samples ⌈(1+o)·K⌉ = "
                    f"{wanted} clients but data.num_clients is {scenario.data.num_clients}"
                )


def over_selected(k: int, over_selection: float) -> int:
    """⌈(1+o)·K⌉, robust to float noise ((1 + 0.1) · 50 is 55.00000000000001 in floats)."""
    return math.ceil(round((1.0 + over_selection) * k, 9))
