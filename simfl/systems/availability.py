"""Client availability over simulated time: always, diurnal, random sessions or a trace.

Each model answers two questions for the server: who is online at time t (only they can be
sampled), and whether a client stays online from t0 until it finishes at t1 (a client that
goes offline first is lost for that round).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simfl.schema.systems import AvailabilityConfig
from simfl.seeding import rng_for
from simfl.systems.traces import TraceError, read_availability_trace

HOUR = 3600.0


class Availability:
    """Every client, always."""

    def __init__(self, num_clients: int) -> None:
        self.num_clients = num_clients

    def online_until(self, client: int, t: float) -> float:
        """When ``client`` next goes offline if online at ``t`` (inf: never); -inf if offline."""
        return np.inf

    def online(self, t: float) -> list[int]:
        """Partition ids online at ``t``, ascending."""
        return [c for c in range(self.num_clients) if self.online_until(c, t) > t]


class PeriodicIntervals(Availability):
    """Online intervals within each client's period, repeating (diurnal patterns, traces).

    An interval may run past its period's end (a night shift from 22 h to 26 h); adjoining
    intervals across the period boundary are one spell.
    """

    def __init__(self, intervals: list[np.ndarray], periods: np.ndarray) -> None:
        super().__init__(len(intervals))
        self.intervals, self.periods = intervals, np.asarray(periods, dtype=float)

    def online_until(self, client: int, t: float) -> float:
        period, spans = self.periods[client], self.intervals[client]
        base = np.floor(t / period) * period
        for shift in (base - period, base):  # an interval of the previous period may reach t
            for start, end in spans:
                if shift + start <= t < shift + end:
                    return self._spell_end(client, shift + end)
        return -np.inf

    def _spell_end(self, client: int, end: float) -> float:
        """Follow adjoining intervals (also across periods) to where the client goes offline."""
        for _ in range(10_000):
            nxt = self._starting_at(client, end)
            if nxt is None:
                return end
            end = nxt
        return np.inf  # online throughout (e.g. one interval covering the whole period)

    def _starting_at(self, client: int, t: float) -> float | None:
        period, spans = self.periods[client], self.intervals[client]
        base = np.floor(t / period) * period
        for shift in (base - period, base):
            for start, end in spans:
                if np.isclose(shift + start, t, rtol=0, atol=1e-9) and shift + end > t:
                    return shift + end
        return None


class Sessions(Availability):
    """Alternating online and offline spells with exponential durations, per client (seeded);
    generated lazily as far as the clock needs."""

    def __init__(self, num_clients: int, mean_on_s: float, mean_off_s: float, seed: int) -> None:
        super().__init__(num_clients)
        self.mean_on_s, self.mean_off_s, self.seed = mean_on_s, mean_off_s, seed
        self._spans: list[list[tuple[float, float]]] = [[] for _ in range(num_clients)]
        self._rngs = [rng_for(seed, "availability-sessions", c) for c in range(num_clients)]
        self._horizon = np.zeros(num_clients)  # spans are known up to here
        for client in range(num_clients):
            rng = self._rngs[client]
            if rng.random() >= mean_on_s / (mean_on_s + mean_off_s):  # starts offline
                self._horizon[client] = rng.exponential(mean_off_s)

    def _extend(self, client: int, t: float) -> None:
        rng = self._rngs[client]
        while self._horizon[client] <= t:
            start = self._horizon[client]
            end = start + rng.exponential(self.mean_on_s)
            self._spans[client].append((start, end))
            self._horizon[client] = end + rng.exponential(self.mean_off_s)

    def online_until(self, client: int, t: float) -> float:
        self._extend(client, t)
        for start, end in reversed(self._spans[client]):
            if start <= t:
                return end if t < end else -np.inf
        return -np.inf


def build_availability(config: AvailabilityConfig, num_clients: int, seed: int) -> Availability:
    """The availability model ``[systems.availability]`` describes."""
    if config.kind == "always":
        return Availability(num_clients)
    period = config.period_h * HOUR
    if config.kind == "diurnal":
        if config.on_fraction >= 1.0:
            return Availability(num_clients)
        starts = rng_for(seed, "availability-diurnal").random(num_clients) * period
        spans = [np.array([[s, s + config.on_fraction * period]]) for s in starts]
        return PeriodicIntervals(spans, np.full(num_clients, period))
    if config.kind == "sessions":
        return Sessions(num_clients, config.mean_on_h * HOUR, config.mean_off_h * HOUR, seed)
    trace = read_availability_trace(Path(config.trace), period)
    if len(trace) < num_clients:
        raise TraceError(f"{config.trace}: {len(trace)} clients, the scenario has {num_clients}")
    return PeriodicIntervals(trace.intervals[:num_clients], trace.periods[:num_clients])
