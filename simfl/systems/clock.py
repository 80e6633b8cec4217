"""The simulated clock: what a round would take on the clients' devices and networks.

A client's round time is compute plus communication, with the bytes simfl measures:
``(samples · epochs + protocol) · ms_per_sample / 1000 · slowdown + 8 · bytes_down / (1000 ·
down_kbps) + 8 · bytes_up / (1000 · up_kbps) + latency_ms / 1000`` seconds, where ``protocol``
is the work a client's protocol did beside training (HE's encryption), in training samples,
as its reply reports it under :data:`PROTOCOL_SAMPLES_KEY`. :class:`SimulatedClock` holds
the run's time and, as a server callback, reports it after every round with the time to the
target accuracy, and stops the run when the simulated time budget is spent.
"""

from __future__ import annotations

import math

from simfl.engine.server_callbacks import CallbackResult, RoundState, ServerCallback

HOUR = 3600.0
#: Reply metric: work beside training (e.g. encryption), in training samples of the device.
PROTOCOL_SAMPLES_KEY = "protocol-samples"


def client_round_seconds(
    samples: int,
    epochs: int,
    ms_per_sample: float,
    bytes_down: int,
    bytes_up: int,
    down_kbps: float,
    up_kbps: float,
    latency_ms: float,
    slowdown: float = 1.0,
    protocol_samples: float = 0.0,
) -> float:
    """One client's simulated seconds for one round (see the module docstring)."""
    compute = (samples * epochs + protocol_samples) * ms_per_sample / 1000.0 * slowdown
    network = 8.0 * bytes_down / (1000.0 * down_kbps) + 8.0 * bytes_up / (1000.0 * up_kbps)
    return compute + network + latency_ms / 1000.0


class SimulatedClock(ServerCallback):
    """Simulated time of the run; a server callback adding ``sim_time_s``, ``sim_time_h`` and
    ``sim_hours_to_target`` (NaN until central accuracy first reaches ``target``)."""

    reads_round_metrics = True  # central accuracy, so central evaluation cannot lag behind

    def __init__(self, target_accuracy: float, budget_h: float = 0.0) -> None:
        self.now_s = 0.0
        self.target, self.budget_h = target_accuracy, budget_h
        self.hours_to_target = math.nan

    def advance(self, seconds: float) -> None:
        self.now_s += seconds

    def state_dict(self) -> dict[str, float]:
        """The run's simulated time and the hours it took to reach the target (NaN: not yet),
        as Python floats (the clock may have summed NumPy ones: the same numbers). The target
        and the budget are the scenario's."""
        return {"now_s": float(self.now_s), "hours_to_target": float(self.hours_to_target)}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.now_s, self.hours_to_target = state["now_s"], state["hours_to_target"]

    def after_round(self, state: RoundState) -> CallbackResult:
        hours = self.now_s / HOUR
        accuracy = state.record.get("central_accuracy")
        if math.isnan(self.hours_to_target) and accuracy >= self.target:
            self.hours_to_target = hours
        metrics = {
            "sim_time_s": self.now_s,
            "sim_time_h": hours,
            "sim_hours_to_target": self.hours_to_target,
        }
        stop = None
        if self.budget_h > 0.0 and hours >= self.budget_h:
            stop = f"simulated time budget of {self.budget_h} h spent ({hours:.3f} h)"
        return CallbackResult(metrics, stop)
