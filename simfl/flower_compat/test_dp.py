"""Contract tests for :mod:`simfl.flower_compat.dp`, one per named assumption."""

from __future__ import annotations

import math

import numpy as np
import pytest
from flwr.serverapp.strategy import FedAvg

from simfl.flower_compat.dp import (
    adaptive_clipping_wrapper,
    exact_dp_clipping,
    seeded_numpy_global,
)


def test_dp_noise_draws_from_numpy_global() -> None:
    from flwr.supercore.differential_privacy import add_gaussian_noise_inplace

    with seeded_numpy_global(123):
        arrays = [np.zeros(5, dtype=np.float32)]
        add_gaussian_noise_inplace(arrays, 0.5)
        again = [np.zeros(5, dtype=np.float32)]
    with seeded_numpy_global(123):
        add_gaussian_noise_inplace(again, 0.5)
    np.random.seed(123)
    expected = np.random.normal(0, 0.5, 5).astype(np.float32)
    assert np.array_equal(arrays[0], expected) and np.array_equal(again[0], expected), (
        "dp-noise-draws-from-numpy-global: Flower's DP noise no longer comes from np.random; DP "
        "runs would not be reproducible (simfl.flower_compat.dp.seeded_numpy_global)"
    )


def test_dp_clipping_imported_by_name_and_inexact() -> None:
    from flwr.clientapp.mod import centraldp_mods, localdp_mod
    from flwr.serverapp.strategy import dp_adaptive_clipping, dp_fixed_clipping
    from flwr.supercore.differential_privacy import compute_clip_model_update

    for module, name in [
        (dp_fixed_clipping, "compute_clip_model_update"),
        (centraldp_mods, "compute_clip_model_update"),
        (centraldp_mods, "compute_adaptive_clip_model_update"),
        (localdp_mod, "compute_clip_model_update"),
        (dp_adaptive_clipping, "adaptive_clip_inputs_inplace"),
    ]:
        assert callable(getattr(module, name, None)), (
            f"dp-clipping-imported-by-name-and-inexact: {module.__name__}.{name}"
        )
    zero = [np.zeros(3, dtype=np.float32)]
    with pytest.raises(ZeroDivisionError):  # if this starts passing, revisit the workaround
        compute_clip_model_update([np.zeros(3, dtype=np.float32)], zero, 1.0)
    with exact_dp_clipping():
        params = [np.zeros(3, dtype=np.float32)]
        dp_fixed_clipping.compute_clip_model_update(params, zero, 1.0)
        big = [np.full(4, 10.0, dtype=np.float32)]
        localdp_mod.compute_clip_model_update(big, [np.zeros(4, dtype=np.float32)], 1.0)
    assert np.array_equal(params[0], zero[0])
    assert float(np.linalg.norm(big[0])) == pytest.approx(1.0, rel=1e-6)
    assert dp_fixed_clipping.compute_clip_model_update is compute_clip_model_update  # restored


@pytest.mark.parametrize("side", ["server", "client"])
def test_adaptive_clipping_norm_sign_inverted(side: str) -> None:
    from flwr.serverapp.strategy import (
        DifferentialPrivacyClientSideAdaptiveClipping,
        DifferentialPrivacyServerSideAdaptiveClipping,
    )
    from flwr.supercore.differential_privacy import adaptive_clip_inputs_inplace

    flowers = {
        "server": DifferentialPrivacyServerSideAdaptiveClipping,
        "client": DifferentialPrivacyClientSideAdaptiveClipping,
    }[side]
    kwargs = {"initial_clipping_norm": 1.0, "target_clipped_quantile": 0.5, "clip_norm_lr": 0.2}
    # norm_bit is True when the update was clipped.
    assert adaptive_clip_inputs_inplace([np.full(4, 10.0)], 1.0) is True
    original = flowers(FedAvg(), 0.0, 3, **kwargs)
    original._geometric_update(1.0)  # every update clipped
    assert original.clipping_norm == pytest.approx(math.exp(-0.1)), (
        "adaptive-clipping-norm-sign-inverted: Flower's adaptive norm no longer shrinks when "
        "every update is clipped; drop simfl.flower_compat.dp.adaptive_clipping_wrapper's "
        "override"
    )
    fixed = adaptive_clipping_wrapper(side)(FedAvg(), 0.0, 3, **kwargs)
    assert isinstance(fixed, flowers)
    fixed._geometric_update(1.0)
    assert fixed.clipping_norm == pytest.approx(math.exp(0.1))
    fixed._geometric_update(0.0)  # none clipped: back down
    assert fixed.clipping_norm == pytest.approx(math.exp(0.1) * math.exp(-0.1))


def _wrapper(side: str, clipping: str):
    from flwr.serverapp.strategy import (
        DifferentialPrivacyClientSideFixedClipping,
        DifferentialPrivacyServerSideFixedClipping,
        FedAdam,
    )

    inner = FedAdam(fraction_train=1.0, min_train_nodes=3, min_available_nodes=3)
    if clipping == "fixed":
        fixed = {
            "server": DifferentialPrivacyServerSideFixedClipping,
            "client": DifferentialPrivacyClientSideFixedClipping,
        }[side]
        return fixed(inner, 0.5, 1.0, 3)
    adaptive = {
        "initial_clipping_norm": 1.0,
        "target_clipped_quantile": 0.5,
        "clip_norm_lr": 0.2,
        "clipped_count_stddev": 1.0,
    }
    return adaptive_clipping_wrapper(side)(inner, 0.5, 3, **adaptive)


def _dp_round(wrapper, server_round: int, arrays, grid):
    """One seeded round of ``wrapper`` with three replies, half of them clipped."""
    import random

    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

    random.seed(server_round)
    rng = np.random.default_rng(server_round)
    messages = list(wrapper.configure_train(server_round, arrays, ConfigRecord(), grid))
    replies = []
    for position, message in enumerate(messages):
        update = {
            k: Array(v.numpy() + rng.normal(size=v.shape).astype("float32"))
            for k, v in arrays.items()
        }
        metrics = MetricRecord({"num-examples": 4, "norm_bit": int(position % 2 == 0)})
        content = RecordDict({"arrays": ArrayRecord(update), "metrics": metrics})
        replies.append(Message(content=content, reply_to=message))
    with seeded_numpy_global(server_round), exact_dp_clipping():
        return wrapper.aggregate_train(server_round, replies)[0]


@pytest.mark.parametrize("side", ["server", "client"])
@pytest.mark.parametrize("clipping", ["fixed", "adaptive"])
def test_dp_wrappers_keep_strategy_and_norm(
    side: str, clipping: str, flower_task, in_memory_grid
) -> None:
    """After two rounds only the clipping norm (and the per-round ``current_arrays``) differ
    from a fresh wrapper; restored into one with the wrapped strategy's state, the third round
    is bit-identical (what checkpoints of central DP runs rely on)."""
    from flwr.app import Array, ArrayRecord

    from simfl.flower_compat.dp import (
        dp_wrapper_state,
        restore_dp_wrapper_state,
        wrapped_strategy,
    )
    from simfl.flower_compat.strategy_state import (
        restore_strategy_server_state,
        strategy_server_state,
    )

    arrays = ArrayRecord({"w": Array(np.random.default_rng(0).normal(size=(3, 2)).astype("f4"))})
    original, fresh = _wrapper(side, clipping), _wrapper(side, clipping)
    assert wrapped_strategy(original) is original.strategy
    with flower_task():
        for server_round in (1, 2):
            arrays = _dp_round(original, server_round, arrays, in_memory_grid(3))
    changed = {
        name
        for name, value in vars(original).items()
        if name not in ("strategy", "current_arrays") and value != vars(fresh).get(name)
    }
    assert changed <= {"clipping_norm"}, (
        f"dp-wrappers-keep-strategy-and-norm: {sorted(changed)} now change between rounds"
    )
    assert ("clipping_norm" in changed) == (clipping == "adaptive")
    restore_dp_wrapper_state(fresh, dp_wrapper_state(original))
    restore_strategy_server_state(
        wrapped_strategy(fresh), strategy_server_state(wrapped_strategy(original))
    )
    with flower_task():
        going_on = _dp_round(original, 3, arrays, in_memory_grid(3))
        resumed = _dp_round(fresh, 3, arrays, in_memory_grid(3))
    assert going_on["w"].numpy().tobytes() == resumed["w"].numpy().tobytes()
    assert original.clipping_norm == fresh.clipping_norm
