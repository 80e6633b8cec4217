"""Flower's differential privacy, made reproducible and exact, with the paper's adaptive norm.

Flower's DP wrappers and mods are used as they are, except where they would make a benchmark
irreproducible (unseeded noise), crash or perturb an update that needs no clipping, or move an
adaptive clipping norm the wrong way. Each fix here patches or subclasses one Flower piece.

Assumptions (contract-tested in ``test_dp.py``):

- ``dp-noise-draws-from-numpy-global``: Flower's DP noise
  (``flwr.supercore.differential_privacy.add_gaussian_noise_inplace``, used by the DP
  strategy wrappers and ``LocalDpMod``, and the adaptive wrappers' noisy clipped count) draws
  from numpy's global generator (``np.random.normal``), so :func:`seeded_numpy_global` decides
  it.
- ``dp-clipping-imported-by-name-and-inexact``: Flower's clipping functions
  (``compute_clip_model_update``, ``compute_adaptive_clip_model_update``,
  ``adaptive_clip_inputs_inplace`` of ``flwr.supercore.differential_privacy``) are imported by
  name into the modules that use them (``dp_fixed_clipping``, ``dp_adaptive_clipping``,
  ``centraldp_mods``, ``localdp_mod``); they divide by the update's norm (an all-zero update
  raises ``ZeroDivisionError``) and rebuild every update as ``global + (reply - global)``, even
  when nothing is clipped (:func:`exact_dp_clipping` replaces them by name).
- ``adaptive-clipping-norm-sign-inverted``: Flower's adaptive-clipping wrappers move the norm
  in ``_geometric_update(clipped_fraction)`` as ``clipping_norm *= exp(-clip_norm_lr *
  (clipped_fraction - target_clipped_quantile))``, where ``clipped_fraction`` is the noisy
  fraction of replies whose update *was clipped* (``norm_bit`` is ``scaling_factor < 1``).
  Andrew et al. 2021 use the fraction *not* clipped there, so Flower's sign is inverted: a
  norm that clips every update shrinks further, one that clips none grows, and the norm runs
  away from the target. :func:`adaptive_clipping_wrapper` overrides that one method with the
  paper's direction.
- ``dp-wrappers-keep-strategy-and-norm``: Flower's DP strategy wrappers keep the strategy
  they wrap in ``strategy`` and carry nothing over between rounds but ``clipping_norm`` (which
  the adaptive ones move after each aggregation): ``current_arrays`` is set again by every
  ``configure_train``, and the pending privacy events are empty without Flower's own
  accountant (simfl accounts itself). :func:`dp_wrapper_state` is what a checkpoint keeps.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from simfl.flower_compat.patching import replaced


@contextlib.contextmanager
def seeded_numpy_global(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for one call (``dp-noise-draws-from-numpy-global``);
    restore it after.

    Flower's DP wrappers and mods draw their Gaussian noise from ``np.random``; seeding it per
    (scenario seed, purpose, round, client) makes DP runs reproducible like every other run.
    """
    saved = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(saved)


def exact_clip(param1: Any, param2: Any, clipping_norm: float) -> bool:
    """Flower's flat clipping of ``param1 - param2``, in place; True if it clipped. An update
    within the norm (zero included) is left bit for bit as it came."""
    from flwr.supercore.differential_privacy import get_norm

    update = [np.subtract(x, y) for x, y in zip(param1, param2, strict=True)]
    norm = get_norm(update)
    if norm <= clipping_norm:
        return False
    for i, delta in enumerate(update):
        delta *= clipping_norm / norm
        param1[i] = param2[i] + delta
    return True


def exact_clip_arrays(arrays: Any, clipping_norm: float) -> bool:
    """Flower's in-place clipping of ``arrays`` to ``clipping_norm``; True if it clipped."""
    from flwr.supercore.differential_privacy import get_norm

    norm = get_norm(arrays)
    if norm <= clipping_norm:
        return False
    for array in arrays:
        array *= clipping_norm / norm
    return True


@contextlib.contextmanager
def exact_dp_clipping() -> Iterator[None]:
    """Flower's DP clipping without its two numerical flaws
    (``dp-clipping-imported-by-name-and-inexact``).

    Flower 1.42 divides by the update's norm (an all-zero update, a client where nothing
    trainable changed, raises ``ZeroDivisionError``) and rebuilds every reply as
    ``global + (reply - global)``, which is not bit-identical in floating point even when
    nothing is clipped. Within this context an update within the clipping norm reaches
    aggregation exactly as the client sent it; a larger one is scaled to the norm as Flower does.
    """
    from flwr.clientapp.mod import centraldp_mods, localdp_mod
    from flwr.serverapp.strategy import dp_adaptive_clipping, dp_fixed_clipping

    def clip(param1: Any, param2: Any, clipping_norm: float) -> None:
        exact_clip(param1, param2, clipping_norm)

    patches = [
        (dp_fixed_clipping, "compute_clip_model_update", clip),
        (centraldp_mods, "compute_clip_model_update", clip),
        (centraldp_mods, "compute_adaptive_clip_model_update", exact_clip),
        (localdp_mod, "compute_clip_model_update", clip),
        (dp_adaptive_clipping, "adaptive_clip_inputs_inplace", exact_clip_arrays),
    ]
    with replaced(patches):
        yield


def andrew_geometric_update(self: Any, clipped_fraction: float) -> None:
    """Andrew et al. 2021's update, C <- C exp(-lr (unclipped - (1 - target))), written with
    the clipped fraction Flower passes: the norm grows while more than ``target`` of the
    updates are clipped and shrinks while fewer are (``adaptive-clipping-norm-sign-inverted``)."""
    self.clipping_norm *= math.exp(
        self.clip_norm_lr * (clipped_fraction - self.target_clipped_quantile)
    )


def adaptive_clipping_wrapper(side: str) -> type:
    """Flower's adaptive-clipping wrapper for ``side`` ("server" or "client") with the norm
    moving in the paper's direction (``adaptive-clipping-norm-sign-inverted``); everything
    else is Flower's."""
    from flwr.serverapp.strategy import (
        DifferentialPrivacyClientSideAdaptiveClipping,
        DifferentialPrivacyServerSideAdaptiveClipping,
    )

    base = (
        DifferentialPrivacyServerSideAdaptiveClipping
        if side == "server"
        else DifferentialPrivacyClientSideAdaptiveClipping
    )
    return type(base.__name__, (base,), {"_geometric_update": andrew_geometric_update})


def wrapped_strategy(wrapper: Any) -> Any:
    """The strategy a Flower DP wrapper wraps (``dp-wrappers-keep-strategy-and-norm``)."""
    return wrapper.strategy


def dp_wrapper_state(wrapper: Any) -> dict[str, float]:
    """What a Flower DP wrapper carries between rounds, as plain values for a checkpoint: its
    clipping norm (``dp-wrappers-keep-strategy-and-norm``)."""
    return {"clipping_norm": float(wrapper.clipping_norm)}


def restore_dp_wrapper_state(wrapper: Any, state: dict[str, float]) -> None:
    """Give a freshly built Flower DP wrapper back what :func:`dp_wrapper_state` saved."""
    wrapper.clipping_norm = state["clipping_norm"]
