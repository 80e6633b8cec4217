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
