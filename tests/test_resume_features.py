"""Every feature's state survives a checkpoint: a run stopped after round 2 and resumed ends
with the metrics, bit for bit (timing columns aside), of a run never stopped.

Each case keeps state across rounds that only its checkpoint can give back: central DP its
accountant's releases, the adaptive clipping norm, FedAdam's moments inside Flower's DP
wrapper and the membership audit's members; local DP-SGD every client's Opacus history;
SecAgg+ with central DP the accountant (the protocol itself starts afresh every round);
over-selection with a deadline the simulated clock and its time to target; FedBuff the clients
in flight, the model versions they downloaded, its counters, its server momentum and the clock;
FedPer every client's head (client state); FedNova with momentum nothing beyond the model;
FedDyn its h (strategy state) and every client's gradient, MOON every client's previous model,
pFedMe every personal model (client state). FedAdam (Flower's own moments), SCAFFOLD (c and
every c_i) and Ditto (every personal model) are killed for real in ``tests/test_resume.py``:
the same checkpoint and client-state code, with nothing shut down cleanly.

The in-process cases run on the session's Ray runtime and stop by a server callback raising
once round 2's checkpoint is written; FedBuff's run is a real ``simfl run`` process killed with
``kill -9`` (``tests/test_resume.py``'s helper), whose driver, Ray and actors all die.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_end_to_end import TINY
from test_resume import _kill_each_after
from tiny_scenario import tiny_scenario

from simfl.engine.checkpoint import latest_checkpoint_dir, load_checkpoint
from simfl.engine.records import TIMING_COLUMNS
from simfl.engine.server_callbacks import RoundState, ServerCallback
from simfl.run import RunOptions, run_scenario

ROUNDS, STOPPED_AFTER = 3, 2
AUDIT = {"audit": {"attack": "loss-threshold"}}
LOGNORMAL = {"distribution": "lognormal", "ms_per_sample": 20.0, "sigma": 1.0}

#: Per case: the tiny scenario's changed tables, and the components its checkpoint holds.
CASES = {
    "central-dp": (
        {
            "strategy": {"name": "fedadam"},
            "privacy": {
                "mode": "central",
                "clipping": "adaptive",
                "noise_multiplier": 0.1,
                "clipping_norm": 0.5,
                **AUDIT,
            },
        },
        {"strategy", "callback-PrivacyCallback"},
    ),
    "local-dpsgd": (
        {"privacy": {"mode": "local-dpsgd", "noise_multiplier": 1.0, **AUDIT}},
        {"strategy", "callback-PrivacyCallback"},
    ),
    "secagg": (
        {
            "privacy": {
                "mode": "central",
                "clipping_side": "client",
                "noise_multiplier": 1.0,
                "clipping_norm": 0.5,
                "secagg": {"enabled": True, "quantization_range": 65536},
            }
        },
        {"strategy", "callback-PrivacyCallback"},
    ),
    "stragglers": (
        {
            "strategy": {"fraction_train": 0.5},  # K = 2 of 4, 3 sampled
            "systems": {
                "over_selection": 0.3,
                "deadline_s": 0.15,  # rounds take 0.13-0.23 simulated s here
                "target_accuracy": 0.01,
                "devices": LOGNORMAL,
            },
        },
        {"callback-SimulatedClock"},
    ),
    "fedper": ({"strategy": {"name": "fedper"}}, set()),  # every client's head: client state
    "fednova": ({"strategy": {"name": "fednova"}, "train": {"momentum": 0.5}}, set()),
    "feddyn": ({"strategy": {"name": "feddyn", "alpha": 0.1}}, {"strategy"}),  # h; each g_k
    "moon": ({"strategy": {"name": "moon", "projection_dim": 16}}, set()),  # previous models
    "pfedme": ({"strategy": {"name": "pfedme", "lam": 5.0, "inner_steps": 2}}, set()),
}


class Stopped(Exception):
    """The run stopped on purpose, after round ``STOPPED_AFTER``'s checkpoint."""


class StopAfterCheckpoint(ServerCallback):
    """Fails the run in the round after ``STOPPED_AFTER``: by then that round has settled and
    its checkpoint is written (with overlapping evaluation it settles during the next round)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def after_round(self, state: RoundState) -> None:
        if state.server_round > STOPPED_AFTER:
            assert latest_checkpoint_dir(self.run_dir).name == f"round-{STOPPED_AFTER:06d}"
            raise Stopped


class RoundsSeen(ServerCallback):
    """The rounds this run itself trained."""

    def __init__(self) -> None:
        self.rounds: list[int] = []

    def after_round(self, state: RoundState) -> None:
        self.rounds.append(state.server_round)


def _options(run_dir: Path, session, *callbacks: ServerCallback, resume=False) -> RunOptions:
    return RunOptions(
        wandb_mode="disabled",
        run_dir=run_dir,
        session=session,
        server_callbacks=callbacks,
        resume=resume,
    )


def _metrics(run_dir: Path) -> pd.DataFrame:
    """The run's metrics but wall times (SecAgg+'s protocol time is one)."""
    frame = pd.read_parquet(run_dir / "metrics.parquet")
    return frame.drop(columns=[c for c in (*TIMING_COLUMNS, "secagg_seconds") if c in frame])


def _components(run_dir: Path) -> set[str]:
    return set(load_checkpoint(latest_checkpoint_dir(run_dir), str(run_dir)).components)


@pytest.mark.ray
@pytest.mark.parametrize("case", list(CASES))
def test_stopped_run_resumes_to_bit_identical_metrics(case, tmp_path, tiny_cache, ray_runtime):
    sections, components = CASES[case]
    scenario = tiny_scenario(
        tmp_path / "results", tiny_cache, scenario={"rounds": ROUNDS}, **sections
    )
    reference = run_scenario(scenario, _options(tmp_path / f"{case}-reference", ray_runtime))
    stopped = tmp_path / f"{case}-stopped"
    with pytest.raises(Stopped):
        run_scenario(scenario, _options(stopped, ray_runtime, StopAfterCheckpoint(stopped)))
    assert _components(stopped) == components

    seen = RoundsSeen()
    run_scenario(scenario, _options(stopped, ray_runtime, seen, resume=True))
    assert seen.rounds == [STOPPED_AFTER + 1]  # from the checkpoint, not from round 0
    expected = _metrics(reference.run_dir)
    pd.testing.assert_frame_equal(_metrics(stopped), expected, check_exact=True)
    assert list(expected["round"]) == list(range(ROUNDS + 1))
    if case == "stragglers":  # the deadline dropped a client over-selection would keep
        assert (expected.loc[expected["round"] > 0, "clients_aggregated"] < 2).any()


FEDBUFF = (
    TINY.replace("rounds = 2", f"rounds = {ROUNDS}")
    .replace('wandb_mode = "offline"', 'wandb_mode = "disabled"')
    .replace(
        'name = "fedavg"',
        'name = "fedbuff"\nconcurrency = 3\nbuffer_size = 2\nserver_momentum = 0.5',
    )
    + '\n[systems.devices]\ndistribution = "lognormal"\nms_per_sample = 20.0\nsigma = 1.0\n'
)


@pytest.mark.ray
def test_killed_fedbuff_run_resumes_to_bit_identical_metrics(
    tmp_path, tiny_cache, cli, ray_runtime
):
    (tmp_path / "tiny.toml").write_text(
        FEDBUFF.format(results=tmp_path / "results", cache=tiny_cache)
    )
    results = tmp_path / "results"
    results.mkdir()
    reference = cli("run", str(tmp_path / "tiny.toml"), cwd=tmp_path)
    assert reference.returncode == 0, reference.stdout + reference.stderr
    (reference_dir,) = results.iterdir()

    killed = _kill_each_after({"fedbuff": (tmp_path, [])}, STOPPED_AFTER)["fedbuff"]
    assert _components(killed) == {"strategy", "callback-SimulatedClock", "federation-loop"}
    resumed = cli("run", "--resume", str(killed), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    resumed_from = int(resumed.stdout.split("after round ")[1].split()[0])
    assert STOPPED_AFTER <= resumed_from < ROUNDS  # from the checkpoint, not from round 0

    expected = _metrics(reference_dir)
    pd.testing.assert_frame_equal(_metrics(killed), expected, check_exact=True)
    assert expected["staleness_max"].max() >= 1  # clients were in flight across updates
