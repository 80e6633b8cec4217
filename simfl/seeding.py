"""Every random choice draws from a generator seeded by (scenario seed, purpose, ids...).

Deriving seeds by hashing instead of sharing one generator makes each draw independent of the
order in which clients, rounds or Ray actors happen to run: same scenario, same numbers.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, purpose: str, *ids: int) -> int:
    """A 63-bit seed unique to ``purpose`` and ``ids`` (client id, round, ...)."""
    text = ":".join([str(seed), purpose, *map(str, ids)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def rng_for(seed: int, purpose: str, *ids: int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, purpose, *ids))
