"""Systems heterogeneity without Ray: the clock's formula, availability over 1,000 rounds with
Flower's own sampling, over-selection and deadlines, FedBuff's server rule (attacks, faults and
traces: test_systems_clients.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from flower_helpers import flower_task
from flwr.app import Array, ArrayRecord, ConfigRecord
from flwr.serverapp.strategy import FedAvg
from test_end_to_end import TINY

from simfl.config import load_scenario, scenario_from_dict
from simfl.errors import ScenarioError
from simfl.flower_compat.grid import VirtualClientGrid, seeded_sampling
from simfl.schema.strategy import FedBuffConfig
from simfl.schema.systems import SystemsConfig, over_selected
from simfl.seeding import derive_seed
from simfl.systems.availability import PeriodicIntervals, build_availability
from simfl.systems.clock import SimulatedClock, client_round_seconds
from simfl.systems.fedbuff import BufferedUpdate, FedBuff
from simfl.systems.profiles import DeviceProfiles, deal_tiers, draw_profiles
from simfl.systems.rounds import ClientTiming, SystemsPlan

QUICKSTART = Path(__file__).parents[1] / "scenarios" / "quickstart.toml"


def tiny(**systems) -> dict:
    import tomllib

    raw = tomllib.loads(TINY.format(results="r", cache="c"))
    if systems:
        raw["systems"] = systems
    return raw


# --------------------------------------------------------------------------- schema


def test_systems_section_at_defaults_keeps_the_hash():
    base = load_scenario(QUICKSTART)
    assert not base.systems.enabled
    empty = scenario_from_dict({**tiny(), "systems": {}})
    assert empty.full_hash() == scenario_from_dict(tiny()).full_hash()
    changed = load_scenario(QUICKSTART, ["systems.over_selection=0.3"])
    assert changed.full_hash() != base.full_hash() and changed.systems.enabled


def test_over_selected_is_exact_despite_float_noise():
    assert (1 + 0.1) * 50 > 55  # the float noise that a naive ceil would turn into 56
    assert over_selected(50, 0.1) == 55
    assert over_selected(10, 0.3) == 13
    assert over_selected(5, 0.0) == 5
    assert over_selected(3, 0.5) == 5


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("systems.devices.ms_per_sample=-1", "systems.devices.ms_per_sample"),
        ("systems.over_selection=-0.1", "systems.over_selection"),
        ("systems.devices.down_kbps=0", "systems.devices.down_kbps"),
    ],
)
def test_bad_systems_values_are_one_line_naming_the_key(override, key):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(QUICKSTART, [override])
    message = str(caught.value)
    assert message.count("\n") == 0
    assert message.startswith("quickstart.toml: key ") and f"'{key}'" in message


def test_fedbuff_buffer_larger_than_concurrency_is_refused():
    with pytest.raises(ValueError, match=r"buffer_size K \(6\) exceeds concurrency C \(5\)"):
        FedBuffConfig(name="fedbuff", concurrency=5, buffer_size=6)


# --------------------------------------------------------------------------- clock


def test_client_round_seconds_is_compute_plus_communication():
    seconds = client_round_seconds(
        samples=120,
        epochs=2,
        ms_per_sample=3.5,
        bytes_down=50_000,
        bytes_up=40_000,
        down_kbps=800.0,
        up_kbps=200.0,
        latency_ms=45.0,
        slowdown=2.0,
    )
    compute = 120 * 2 * 3.5 / 1000 * 2.0  # 1.68 s
    network = 50_000 * 8 / 800_000 + 40_000 * 8 / 200_000  # 0.5 s + 1.6 s
    assert seconds == pytest.approx(compute + network + 0.045, abs=1e-12)


def test_clock_reports_time_to_target_and_stops_at_the_budget():
    from simfl.engine.records import RoundRecord
    from simfl.engine.server_callbacks import RoundState

    clock = SimulatedClock(target_accuracy=0.5, budget_h=1.0)
    results = []
    for round_number, accuracy in enumerate([0.1, 0.4, 0.6, 0.7]):
        record = RoundRecord(round=round_number)
        record.add({"central_accuracy": accuracy})
        results.append(clock.after_round(RoundState(round_number, None, None, record)))
        clock.advance(1800.0)
    assert math.isnan(results[1].metrics["sim_hours_to_target"])
    assert [r.metrics["sim_hours_to_target"] for r in results[2:]] == [1.0, 1.0]
    assert [r.stop is not None for r in results] == [False, False, True, True]


# --------------------------------------------------------------------------- profiles


def test_profiles_fixed_lognormal_and_tiers():
    fixed = draw_profiles(SystemsConfig().devices, 3, seed=0)
    assert fixed.ms_per_sample.tolist() == [0.0, 0.0, 0.0]
    config = SystemsConfig.model_validate(
        {"devices": {"distribution": "lognormal", "ms_per_sample": 10.0, "sigma": 1.0}}
    ).devices
    drawn = draw_profiles(config, 2000, seed=1)
    assert np.median(drawn.ms_per_sample) == pytest.approx(10.0, rel=0.1)
    assert np.std(np.log(drawn.ms_per_sample)) == pytest.approx(1.0, rel=0.1)
    assert (
        drawn.ms_per_sample.tolist() == draw_profiles(config, 2000, seed=1).ms_per_sample.tolist()
    )
    tiers = deal_tiers([0.5, 0.3, 0.2], 10, seed=0)
    assert np.bincount(tiers).tolist() == [5, 3, 2]


# --------------------------------------------------------------------------- rounds


def plan_for(
    ms_per_sample: list[float],
    sizes: list[int],
    availability=None,
    fraction_train: float = 0.75,
    **systems,
) -> SystemsPlan:
    n = len(sizes)
    raw = tiny(**systems)
    raw["data"]["num_clients"] = n
    raw["strategy"]["fraction_train"] = fraction_train
    raw["strategy"]["min_available_nodes"] = min(n, raw["strategy"]["min_available_nodes"])
    scenario = scenario_from_dict(raw)
    profiles = DeviceProfiles(
        np.array(ms_per_sample, dtype=float),
        np.full(n, 1000.0),
        np.full(n, 1000.0),
        np.zeros(n),
    )
    timing = ClientTiming(np.array(sizes), profiles, epochs=1)
    availability = availability or build_availability(scenario.systems.availability, n, 0)
    return SystemsPlan(scenario, timing, availability, SimulatedClock(0.5))


def test_over_selection_keeps_exactly_the_k_fastest_and_counts_the_rest():
    plan = plan_for([5, 1, 4, 2, 3, 6], [100] * 6, over_selection=0.5)
    plan._keep = 4  # K; 6 = ⌈1.5 · 4⌉ were sampled
    outcome = plan.settle(1, [(c, 1000, 1000, 0.0) for c in range(6)])
    assert outcome.kept == frozenset({1, 3, 4, 2})  # the four fastest
    assert outcome.dropped_deadline == 2 and outcome.dropped_availability == 0
    network = 2 * 8 * 1000 / 1_000_000
    assert outcome.seconds == pytest.approx(100 * 4 / 1000 + network)  # the 4th to finish


def test_deadline_drops_late_clients_and_ends_the_round_at_the_deadline():
    plan = plan_for([1, 10, 3], [100] * 3, deadline_s=0.5)
    outcome = plan.settle(1, [(0, 0, 0, 0.0), (1, 0, 0, 0.0), (2, 0, 0, 0.0)])
    assert outcome.kept == frozenset({0, 2}) and outcome.dropped_deadline == 1
    assert outcome.seconds == 0.5


def test_no_deadline_waits_for_the_slowest():
    plan = plan_for([1, 10, 3], [100] * 3, devices={"ms_per_sample": 1.0})
    outcome = plan.settle(1, [(0, 0, 0, 0.0), (1, 0, 0, 0.0), (2, 0, 0, 0.0)])
    assert outcome.kept == frozenset({0, 1, 2}) and outcome.seconds == 1.0


def test_a_protocols_work_is_charged_at_the_devices_speed():
    """HE's encryption, reported in training samples, costs each device its own time: a
    client 10x slower pays 10x for the same ciphertexts."""
    plan = plan_for([1, 10], [100] * 2, devices={"ms_per_sample": 1.0})
    plain = plan.settle(1, [(0, 0, 0, 0.0), (1, 0, 0, 0.0)])
    encrypted = plan.settle(1, [(0, 0, 0, 0.0), (1, 0, 0, 50.0)])
    assert plain.seconds == pytest.approx(100 * 10 / 1000)
    assert encrypted.seconds == pytest.approx((100 + 50) * 10 / 1000)


def random_trace(n: int, period: float, seed: int) -> PeriodicIntervals:
    rng = np.random.default_rng(seed)
    intervals = []
    for _ in range(n):
        cuts = np.sort(rng.choice(np.arange(1, int(period)), size=6, replace=False))
        intervals.append(cuts.reshape(3, 2).astype(float))
    return PeriodicIntervals(intervals, np.full(n, period))


def test_over_1000_rounds_no_client_is_sampled_or_counted_while_unavailable():
    """Flower's own FedAvg samples through the plan on the virtual-client grid; every sampled
    client is online at the round's start and every kept one throughout its work."""
    n, period = 30, 3600.0
    availability = random_trace(n, period, seed=7)
    sizes = list(np.random.default_rng(0).integers(20, 200, n))
    speeds = list(np.random.default_rng(1).lognormal(np.log(20.0), 1.0, n))
    plan = plan_for(speeds, sizes, availability, fraction_train=0.3, over_selection=0.3)
    strategy = FedAvg(**plan.scenario.strategy.sampling_kwargs())
    grid = VirtualClientGrid(None, n, list(range(n)))  # sampling only: nothing is sent
    arrays = ArrayRecord({"w": Array(np.zeros(3, dtype=np.float32))})
    sampled_total = kept_total = lost_total = 0
    for server_round in range(1, 1001):
        with (
            flower_task(),
            seeded_sampling(derive_seed(0, "sample-train", server_round)),
            plan.sampling("train", grid, strategy, server_round),
        ):
            messages = list(strategy.configure_train(server_round, arrays, ConfigRecord(), grid))
        start = plan.clock.now_s
        sampled = [m.metadata.dst_node_id for m in messages]
        assert sampled and all(availability.online_until(c, start) > start for c in sampled)
        outcome = plan.settle(server_round, [(c, 40_000, 40_000, 0.0) for c in sampled])
        for client in outcome.kept:
            seconds = plan.timing.seconds(client, 40_000, 40_000, 1.0)
            assert availability.online_until(client, start) >= start + seconds  # online throughout
        assert len(outcome.kept) <= plan._keep
        assert outcome.dropped_availability + outcome.dropped_deadline + len(outcome.kept) == len(
            sampled
        )
        sampled_total += len(sampled)
        kept_total += len(outcome.kept)
        lost_total += outcome.dropped_availability
        plan.clock.advance(outcome.seconds + 97.0)  # rounds also start at odd times
    assert grid.get_node_ids() == list(range(n))  # restored after each sampling
    assert lost_total > 0 and kept_total > 0.5 * sampled_total  # the trace did bite


def test_everyone_available_samples_exactly_what_flower_samples():
    plan = plan_for([1.0] * 10, [50] * 10, fraction_train=0.5)
    strategy = FedAvg(**plan.scenario.strategy.sampling_kwargs())
    grid = VirtualClientGrid(None, 10, list(range(10)))
    arrays = ArrayRecord({"w": Array(np.zeros(1, dtype=np.float32))})
    for server_round in range(1, 20):
        seed = derive_seed(0, "sample-train", server_round)
        with flower_task(), seeded_sampling(seed):
            plain = [
                m.metadata.dst_node_id
                for m in strategy.configure_train(server_round, arrays, ConfigRecord(), grid)
            ]
        with flower_task(), seeded_sampling(seed), plan.sampling("train", grid, strategy, 1):
            planned = [
                m.metadata.dst_node_id
                for m in strategy.configure_train(server_round, arrays, ConfigRecord(), grid)
            ]
        assert planned == plain


def _availability(section: dict, num_clients: int):
    config = SystemsConfig.model_validate({"availability": section}).availability
    return build_availability(config, num_clients, seed=0)


def test_periodic_availability_and_sessions():
    diurnal = _availability({"kind": "diurnal", "period_h": 1.0, "on_fraction": 0.25}, 50)
    times = np.arange(0, 3600, 10.0)
    share = np.mean([len(diurnal.online(t)) / 50 for t in times])
    assert share == pytest.approx(0.25, abs=0.02)
    sessions = _availability({"kind": "sessions", "mean_on_h": 1.0, "mean_off_h": 3.0}, 200)
    share = np.mean([len(sessions.online(t)) / 200 for t in np.arange(0, 200 * 3600, 3600.0)])
    assert share == pytest.approx(0.25, abs=0.03)
    wrap = PeriodicIntervals([np.array([[0.0, 10.0], [90.0, 100.0]])], np.array([100.0]))
    assert wrap.online_until(0, 95.0) == 110.0  # adjoining across the period boundary


# --------------------------------------------------------------------------- FedBuff rule


def fedbuff(**settings) -> FedBuff:
    return FedBuff(FedBuffConfig(name="fedbuff", concurrency=4, buffer_size=2, **settings))


def test_staleness_weights_are_one_over_sqrt_one_plus_tau():
    rule = fedbuff()
    assert [rule.staleness_weight(t) for t in (0, 1, 3, 8)] == pytest.approx(
        [1.0, 1 / math.sqrt(2), 0.5, 1 / 3]
    )
    assert fedbuff(staleness_exponent=0.0).staleness_weight(5) == 1.0
    assert fedbuff(staleness_exponent=1.0).staleness_weight(3) == 0.25


def test_fedbuff_applies_the_staleness_weighted_buffer_with_server_lr_and_momentum():
    arrays = ArrayRecord({"w": Array(np.array([1.0, 2.0], dtype=np.float32))})
    buffer = [
        BufferedUpdate(
            {"w": np.array([1.0, 0.0])}, 30, staleness=0, train_loss=1, train_accuracy=0
        ),
        BufferedUpdate(
            {"w": np.array([0.0, 4.0])}, 10, staleness=3, train_loss=1, train_accuracy=0
        ),
    ]
    rule = fedbuff(server_learning_rate=2.0, server_momentum=0.5)
    step = np.array([0.75 * 1.0, 0.25 * 0.5 * 4.0])  # n_k/n · s(τ) · Δ_k
    first = rule.apply(arrays, buffer)["w"].numpy()
    np.testing.assert_allclose(first, [1.0, 2.0] + 2.0 * step, rtol=0, atol=1e-6)
    second = rule.apply(arrays, buffer)["w"].numpy()  # m = 0.5 m + Δ
    np.testing.assert_allclose(second, [1.0, 2.0] + 2.0 * 1.5 * step, rtol=0, atol=1e-6)
    uniform = fedbuff(weighting="uniform").apply(arrays, buffer)["w"].numpy()
    np.testing.assert_allclose(uniform, [1.0 + 0.5, 2.0 + 0.5 * 0.5 * 4.0], atol=1e-6)
    assert first.dtype == np.float32
