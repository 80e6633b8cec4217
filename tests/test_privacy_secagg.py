"""SecAgg+ through the bridge, on real Flower/Ray simulations of the tiny scenario.

Round 1 starts from the same global model with the same seeded local training, so the
SecAgg+ aggregate and plain FedAvg's differ only by SecAgg+'s quantization and weight
rounding: they must agree within the bound the bridge derives (and reports per round).
Dropouts come from fault injection, which crashes the same clients in both runs (in SecAgg+
after they shared their keys), so FedAvg aggregates the same survivors.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_end_to_end import TINY

from simfl.config import load_scenario
from simfl.engine.server_callbacks import ServerCallback
from simfl.errors import SimflError
from simfl.privacy.secagg import error_bound
from simfl.run import RunOptions, run_scenario
from simfl.schema.privacy import SecAggConfig


class CaptureRounds(ServerCallback):
    def __init__(self) -> None:
        self.arrays = {}

    def after_round(self, state):
        self.arrays[state.server_round] = {k: v.numpy().copy() for k, v in state.arrays.items()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("secagg")
    path = root / "tiny.toml"
    path.write_text(TINY.format(results=root / "results", cache=root / "cache"))
    return path


def run(tiny, *overrides):
    base = [
        "scenario.rounds=1",
        "tracking.wandb_mode=disabled",
        "privacy.secagg.quantization_range=65536",
    ]
    scenario = load_scenario(tiny, [*base, *overrides])
    capture = CaptureRounds()
    outcome = run_scenario(scenario, RunOptions(server_callbacks=[capture]))
    return capture.arrays[1], outcome.history.rounds[-1]


@pytest.mark.parametrize("crash", [0.0, 0.37])  # 0.37: client 1 of {0, 1, 2} crashes
def test_secagg_mean_equals_fedavg_within_the_quantization_bound(tiny, crash):
    faults = f"faults.client_crash_probability={crash}"
    plain, plain_record = run(tiny, faults)
    secure, record = run(tiny, faults, "privacy.secagg.enabled=true")
    assert record.clients_succeeded == plain_record.clients_succeeded
    if crash:
        assert record.metrics["secagg_clients_dropped"] == record.clients_failed == 1
    bound = record.metrics["secagg_error_bound"]
    worst = max(float(np.abs(secure[k] - plain[k]).max()) for k in plain)
    assert 0 < worst <= bound, (worst, bound)
    # Overhead, reported per round: protocol bytes exceed plain FedAvg's.
    assert record.bytes_up > plain_record.bytes_up and record.metrics["secagg_seconds"] > 0


def test_a_cohort_below_the_reconstruction_threshold_fails_the_round(tiny):
    with pytest.raises(SimflError, match="privacy.secagg.reconstruction_threshold"):
        run(tiny, "privacy.secagg.enabled=true", "privacy.secagg.dropout_probability=0.9")


def test_error_bound_formula():
    secagg = SecAggConfig(clipping_range=1.0, quantization_range=1000)
    # Two clients of 500 examples: ratios 0.5 each, no weight rounding; 2 * 0.002 / 1.0.
    assert error_bound(secagg, [500, 500]) == pytest.approx(0.004)
