"""Device profiles: each client's compute speed and network, drawn once per run (seeded)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simfl.schema.systems import DevicesConfig
from simfl.seeding import rng_for
from simfl.systems.traces import TraceError, read_device_trace


@dataclass(frozen=True)
class DeviceProfiles:
    """Per-client arrays (index = partition id)."""

    ms_per_sample: np.ndarray
    down_kbps: np.ndarray
    up_kbps: np.ndarray
    latency_ms: np.ndarray


def draw_profiles(config: DevicesConfig, num_clients: int, seed: int) -> DeviceProfiles:
    """The clients' profiles for ``config``: fixed, log-normal around medians, tiers or a trace.

    Log-normal: value = median · exp(sigma · z), z ~ N(0, 1) per client (compute and the two
    bandwidths each their own z; ``network_sigma`` for both bandwidths). Tiers: shares are
    normalised and clients dealt to tiers by a seeded permutation (largest remainders).
    """
    n = num_clients
    full = lambda value: np.full(n, float(value))  # noqa: E731
    if config.distribution == "fixed":
        return DeviceProfiles(
            full(config.ms_per_sample),
            full(config.down_kbps),
            full(config.up_kbps),
            full(config.latency_ms),
        )
    if config.distribution == "lognormal":
        rng = rng_for(seed, "device-profiles")
        z = rng.standard_normal((3, n))
        return DeviceProfiles(
            config.ms_per_sample * np.exp(config.sigma * z[0]),
            config.down_kbps * np.exp(config.network_sigma * z[1]),
            config.up_kbps * np.exp(config.network_sigma * z[2]),
            full(config.latency_ms),
        )
    if config.distribution == "tiers":
        tier_of = deal_tiers([tier.share for tier in config.tiers], n, seed)
        pick = lambda name: np.array([getattr(config.tiers[t], name) for t in tier_of])  # noqa: E731
        return DeviceProfiles(
            pick("ms_per_sample").astype(float),
            pick("down_kbps").astype(float),
            pick("up_kbps").astype(float),
            pick("latency_ms").astype(float),
        )
    trace = read_device_trace(Path(config.trace))
    if len(trace) < n:
        raise TraceError(f"{config.trace}: {len(trace)} clients, the scenario has {n}")
    return DeviceProfiles(
        trace.ms_per_sample[:n], trace.down_kbps[:n], trace.up_kbps[:n], trace.latency_ms[:n]
    )


def deal_tiers(shares: list[float], num_clients: int, seed: int) -> np.ndarray:
    """Each client's tier: round(share · n) clients per tier (largest remainders), seeded."""
    weights = np.asarray(shares, dtype=float) / float(np.sum(shares))
    exact = weights * num_clients
    counts = np.floor(exact).astype(int)
    for tier in np.argsort(-(exact - counts), kind="stable")[: num_clients - counts.sum()]:
        counts[tier] += 1
    tiers = np.repeat(np.arange(len(shares)), counts)
    return tiers[rng_for(seed, "device-tiers").permutation(num_clients)]
