"""Partial work under a deadline: clients that would miss it train the steps that fit.

- the step budget is the largest number of minibatch steps whose simulated round (compute of
  the examples those steps hold, download, upload, latency) fits the deadline;
- ``train_epochs`` with a step limit stops exactly there (one epoch's steps = one epoch);
- end to end, a deadline that drops the slow clients keeps them with partial work, the round
  records say how many and how much work they did, and two runs are bit-identical;
- partial work without a deadline is one line, exit 2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_scenario import tiny_scenario, tiny_text

from simfl.engine.records import TIMING_COLUMNS
from simfl.run import RunOptions, run_scenario
from simfl.schema.sections import TrainConfig
from simfl.systems.partial_work import steps_within
from simfl.systems.profiles import DeviceProfiles
from simfl.systems.rounds import ClientTiming
from simfl.training import train_epochs


def test_the_budget_is_the_most_steps_that_fit_the_deadline():
    # 100 examples, batches of 10, 2 epochs: 20 steps of 0.1 s; 8 kB down and up at 64 kbps
    # (1 s each) and 50 ms latency leave 1.0 s of a 3.05 s deadline... for 10 steps
    profiles = DeviceProfiles(
        np.array([10.0]), np.array([64.0]), np.array([64.0]), np.array([50.0])
    )
    timing = ClientTiming(np.array([100]), profiles, epochs=2, batch_size=10)
    assert timing.total_steps(0) == 20
    assert steps_within(timing, 0, 3.05, 8000, 8000, 1.0) == 10
    assert steps_within(timing, 0, 3.05 + 0.95, 8000, 8000, 1.0) == 19
    assert steps_within(timing, 0, 100.0, 8000, 8000, 1.0) == 20  # the whole work fits
    assert steps_within(timing, 0, 2.1, 8000, 8000, 1.0) == 0  # not one step fits
    assert timing.samples_after(0, 13) == 130 and timing.samples_after(0, 20) == 200


def test_a_step_limit_of_one_epoch_is_one_epoch():
    torch.manual_seed(0)
    x, y = torch.randn(40, 6), torch.randint(0, 3, (40,))
    models = [torch.nn.Linear(6, 3) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    three = TrainConfig(local_epochs=3, batch_size=8, lr=0.1)
    one = TrainConfig(local_epochs=1, batch_size=8, lr=0.1)
    train_epochs(models[0], x, y, three, seed=5, max_steps=5)  # 40 / 8 = 5 steps an epoch
    train_epochs(models[1], x, y, one, seed=5)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(a, b)


DEVICES = {"distribution": "lognormal", "ms_per_sample": 20.0, "sigma": 1.0}
DEADLINE = 0.25  # the slowest device (29 ms a sample) fits one batch of 8, not its epoch


def _run(tmp_path, tiny_cache, ray_runtime, name: str, partial: bool) -> pd.DataFrame:
    systems = {"deadline_s": DEADLINE, "devices": DEVICES, "partial_work": partial}
    scenario = tiny_scenario(
        tmp_path / name, tiny_cache, scenario={"rounds": 3}, systems=systems,
        strategy={"name": "fednova"},
    )  # fmt: skip
    outcome = run_scenario(scenario, RunOptions(wandb_mode="disabled", session=ray_runtime))
    frame = pd.read_parquet(outcome.run_dir / "metrics.parquet")
    RUN_DIRS[name] = outcome.run_dir
    return frame[frame["round"] > 0].drop(columns=[c for c in TIMING_COLUMNS if c in frame])


RUN_DIRS: dict = {}


@pytest.mark.ray
def test_partial_work_keeps_the_clients_a_deadline_drops(tmp_path, tiny_cache, ray_runtime):
    dropping = _run(tmp_path, tiny_cache, ray_runtime, "drop", partial=False)
    assert dropping["clients_dropped_deadline"].sum() > 0
    partial = _run(tmp_path, tiny_cache, ray_runtime, "partial", partial=True)
    again = _run(tmp_path, tiny_cache, ray_runtime, "again", partial=True)
    pd.testing.assert_frame_equal(partial, again, check_exact=True)
    kept, dropped = partial["clients_aggregated"].sum(), partial["clients_dropped_deadline"].sum()
    assert kept > dropping["clients_aggregated"].sum()
    assert dropped < dropping["clients_dropped_deadline"].sum()
    assert partial["clients_partial_work"].sum() == kept - dropping["clients_aggregated"].sum()
    assert (partial["work_fraction_mean"] < 1.0).any() and (partial["work_fraction_mean"] > 0).all()
    assert (partial["sim_round_s"] <= DEADLINE + 1e-9).all()  # the round ends by the deadline
    # τ_i per client: FedNova's clients report their steps, fewer for those with partial work
    updates = pd.read_parquet(RUN_DIRS["partial"] / "client_updates.parquet")
    full = pd.read_parquet(RUN_DIRS["drop"] / "client_updates.parquet")
    assert len(updates) == kept and updates["local_steps"].ge(1).all()
    assert updates["local_steps"].min() < full["local_steps"].max()


def test_partial_work_without_a_deadline_is_one_line(tmp_path, cli):
    path = tmp_path / "partial.toml"
    path.write_text(
        tiny_text(tmp_path / "r", tmp_path / "c") + "\n[systems]\npartial_work = true\n"
    )
    done = cli("validate", str(path))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "systems.partial_work needs a deadline: set systems.deadline_s > 0" in line
