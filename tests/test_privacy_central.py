"""Central DP through Flower's own wrappers, as simfl builds them, on real Flower Messages.

Noise, clipping and bit-identity are checked on the strategy the scenario builds; epsilon is
checked against an independent dp-accounting computation of the same event.
"""

from __future__ import annotations

import random

import dp_accounting
import numpy as np
import pytest
from dp_accounting.rdp import RdpAccountant
from flower_helpers import flower_task, in_memory_grid
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from simfl import registry
from simfl.config import scenario_from_dict
from simfl.engine.records import RoundRecord
from simfl.engine.server_callbacks import RoundState
from simfl.privacy.accounting import CentralAccountant
from simfl.privacy.central import private_strategy

NUM_CLIENTS, SAMPLED = 20, 10
SIZE = 20_000  # coordinates per aggregate: enough draws for a 5% std check


def scenario(privacy: dict, strategy: str = "fedavg", min_train_nodes: int = 2):
    return scenario_from_dict(
        {
            "scenario": {"name": "dp", "rounds": 3},
            "data": {"dataset": "synth-commands", "num_clients": NUM_CLIENTS},
            "partition": {"kind": "iid"},
            "model": {"name": "kws-cnn"},
            "strategy": {
                "name": strategy,
                "fraction_train": SAMPLED / NUM_CLIENTS,
                "min_train_nodes": min_train_nodes,
                "min_available_nodes": NUM_CLIENTS,
            },
            "privacy": privacy,
        }
    )


def built(privacy: dict, strategy: str = "fedavg", min_train_nodes: int = 2):
    sc = scenario(privacy, strategy, min_train_nodes)
    plain = registry.STRATEGIES[sc.strategy.name].load()(sc.strategy, sc)
    return sc, private_strategy(plain, sc), plain


@pytest.fixture(autouse=True)
def _task():
    with flower_task():
        yield


def one_round(strategy, server_round, global_w, updates, sizes=None, replies_kept=None):
    """configure_train on a real grid, replies = global + update, aggregate_train."""
    random.seed(server_round)
    grid = in_memory_grid(NUM_CLIENTS)
    arrays = ArrayRecord({k: Array(v) for k, v in global_w.items()})
    messages = list(strategy.configure_train(server_round, arrays, ConfigRecord(), grid))
    replies = []
    for i, message in enumerate(messages[: replies_kept or len(messages)]):
        weights = {k: (v + updates[i][k]).astype(np.float32) for k, v in global_w.items()}
        metrics = {"num-examples": (sizes or [10] * len(messages))[i], "train_loss": 1.0}
        content = RecordDict(
            {
                "arrays": ArrayRecord({k: Array(v) for k, v in weights.items()}),
                "metrics": MetricRecord(metrics),
            }
        )
        replies.append(Message(content=content, reply_to=message))
    out, _ = strategy.aggregate_train(server_round, replies)
    return {k: out[k].numpy() for k in global_w}, len(messages)


def zeros(n):
    return [{"w": np.zeros(SIZE, dtype=np.float32)} for _ in range(n)]


@pytest.mark.parametrize("side", ["server", "client"])
def test_noise_std_matches_noise_multiplier_times_clip_over_sampled(side):
    z, clip = 1.3, 2.0
    _, strategy, _ = built({"mode": "central", "noise_multiplier": z, "clipping_norm": clip,
                            "clipping_side": side})  # fmt: skip
    global_w = {"w": np.zeros(SIZE, dtype=np.float32)}
    out, sampled = one_round(strategy, 1, global_w, zeros(SAMPLED))
    assert sampled == SAMPLED
    expected = z * clip / SAMPLED
    assert abs(out["w"].std() / expected - 1) < 0.05
    # With fewer replies than sampled, Flower keeps the std scaled for the sampled count;
    # the release says so: the effective noise multiplier is z * replied / sampled.
    out, _ = one_round(strategy, 2, global_w, zeros(SAMPLED), replies_kept=4)
    assert abs(out["w"].std() / expected - 1) < 0.05
    release = strategy.releases[2]
    assert (release.sampled, release.aggregated) == (SAMPLED, 4)
    assert release.effective_noise_multiplier == pytest.approx(z * 4 / SAMPLED, rel=1e-12)


def test_no_update_above_the_clipping_norm_reaches_aggregation():
    clip = 0.5
    _, strategy, plain = built({"mode": "central", "noise_multiplier": 0.0, "clipping_norm": clip})
    seen = []
    aggregate = plain.aggregate_train

    def recording(server_round, replies):
        replies = list(replies)
        seen.extend(reply.content["arrays"]["w"].numpy().copy() for reply in replies)
        return aggregate(server_round, replies)

    plain.aggregate_train = recording
    rng = np.random.default_rng(0)
    global_w = {"w": rng.normal(size=SIZE).astype(np.float32)}
    updates = [{"w": rng.normal(scale=s, size=SIZE)} for s in np.linspace(0.001, 1, SAMPLED)]
    original = [float(np.linalg.norm(u["w"])) for u in updates]
    one_round(strategy, 1, global_w, updates)
    norms = [float(np.linalg.norm(w - global_w["w"])) for w in seen]
    assert len(norms) == SAMPLED and max(original) > 100 * clip
    assert max(norms) <= clip * (1 + 1e-5)
    small = [o for o in original if o < clip]
    assert small and all(
        n == pytest.approx(o, rel=1e-4) for n, o in zip(norms, original, strict=True) if o < clip
    )


def test_zero_noise_and_a_large_clipping_norm_give_fedavg_bit_identical():
    privacy = {"mode": "central", "noise_multiplier": 0.0, "clipping_norm": 1e6,
               "uniform_weights": False}  # fmt: skip
    _, private, _ = built(privacy)
    _, _, plain = built({})
    rng = np.random.default_rng(1)
    global_w = {"w": rng.normal(size=SIZE).astype(np.float32)}
    updates = [{"w": rng.normal(scale=0.01, size=SIZE)} for _ in range(SAMPLED)]
    sizes = [int(n) for n in rng.integers(5, 50, size=SAMPLED)]
    got, _ = one_round(private, 1, global_w, updates, sizes)
    expected, _ = one_round(plain, 1, global_w, updates, sizes)
    assert got["w"].dtype == expected["w"].dtype
    assert np.array_equal(got["w"], expected["w"])


def independent_epsilon(z, population, sampled, rounds, delta):
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.SampledWithoutReplacementDpEvent(
            population, sampled, dp_accounting.GaussianDpEvent(z / 2)
        ),
        rounds,
    )
    accountant = RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    accountant.compose(event)
    return accountant.get_epsilon(delta)


def run_accounted(z, rounds, max_epsilon=None, min_train_nodes=2):
    privacy = {"mode": "central", "noise_multiplier": z, "clipping_norm": 1.0, "delta": 1e-5}
    if max_epsilon:
        privacy["max_epsilon"] = max_epsilon
    sc, strategy, _ = built(privacy, min_train_nodes=min_train_nodes)
    accountant = CentralAccountant(strategy, sc)
    global_w = {"w": np.zeros(8, dtype=np.float32)}
    epsilons, stop = [], None
    for t in range(rounds + 1):
        if t > 0:
            one_round(strategy, t, global_w, [{"w": np.ones(8)} for _ in range(SAMPLED)])
        result = accountant.after_round(RoundState(t, ArrayRecord(), None, RoundRecord(t)))
        epsilons.append(result.metrics["epsilon"])
        if result.stop:
            stop = (t, result.stop)
            break
    return epsilons, stop


def test_epsilon_equals_dp_accounting_grows_with_rounds_and_falls_with_noise():
    low, _ = run_accounted(1.0, 4)
    high, _ = run_accounted(3.0, 4)
    assert low[0] == 0.0  # round 0: nothing released yet
    low, high = low[1:], high[1:]
    for r, eps in enumerate(low, start=1):
        expected = independent_epsilon(1.0, NUM_CLIENTS, SAMPLED, r, 1e-5)
        assert eps == pytest.approx(expected, rel=1e-6)
    assert high[-1] == pytest.approx(
        independent_epsilon(3.0, NUM_CLIENTS, SAMPLED, 4, 1e-5), rel=1e-6
    )
    assert all(a < b for a, b in zip(low, low[1:], strict=False))
    assert all(h < lo for h, lo in zip(high, low, strict=True))


def test_max_epsilon_stops_before_the_budget_would_be_exceeded():
    budget = independent_epsilon(3.0, NUM_CLIENTS, SAMPLED, 6, 1e-5)
    # Every sampled client must reply: the look-ahead's worst case is the nominal round.
    epsilons, stop = run_accounted(3.0, 50, max_epsilon=budget * 1.0001, min_train_nodes=SAMPLED)
    assert stop == (6, stop[1]) and "privacy.max_epsilon" in stop[1]
    assert max(epsilons) <= budget * 1.0001 and epsilons[-1] == pytest.approx(budget, rel=1e-6)
    # Accepting rounds with 2 of 10 replies, the worst case is charged ahead: it stops earlier.
    epsilons, stop = run_accounted(3.0, 50, max_epsilon=budget * 1.0001)
    assert stop is not None and stop[0] < 6 and max(epsilons) <= budget


def test_privacy_section_is_hash_neutral_at_its_default():
    plain = scenario({})
    explicit = scenario({"mode": "none", "delta": 1e-5, "audit": {"attack": "none"}})
    assert explicit.full_hash() == plain.full_hash()
    assert scenario({"mode": "central"}).full_hash() != plain.full_hash()


def test_adaptive_clipping_release_accounts_the_norm_really_used():
    """Flower's adaptive wrappers clip with the current norm, then update it, then noise with
    the updated one: the release charges noise(updated) against sensitivity(current)."""
    z = 0.5  # cohort 10: Flower's clipped_count_stddev = 10 / 20 = 0.5
    _, strategy, _ = built({"mode": "central", "clipping": "adaptive", "noise_multiplier": z,
                            "clipping_norm": 0.1})  # fmt: skip
    global_w = {"w": np.zeros(SIZE, dtype=np.float32)}
    out, _ = one_round(strategy, 1, global_w, [{"w": np.full(SIZE, 1.0)}] * SAMPLED)
    release, dp = strategy.releases[1], strategy.dp
    # Every update (norm 141) is clipped at 0.1: the norm grows (Andrew et al. 2021).
    assert release.clipping_norm == 0.1 and dp.clipping_norm > 0.1
    z_update = (z**-2 - (2 * 0.5) ** -2) ** -0.5  # Flower's share of z for the update
    assert release.noise_std == pytest.approx(z_update * dp.clipping_norm / SAMPLED, rel=1e-12)
    assert abs(out["w"].std() / release.noise_std - 1) < 0.05
    expected_update = z_update * dp.clipping_norm / 0.1
    assert release.update_noise_multiplier == pytest.approx(expected_update, rel=1e-12)
    combined = (expected_update**-2 + (2 * 0.5) ** -2) ** -0.5
    assert release.effective_noise_multiplier == pytest.approx(combined, rel=1e-12)
