"""Every random choice draws from a generator seeded by (seed, purpose, ids...).

Deriving seeds by hashing instead of sharing one generator makes each draw independent of the
order in which clients, rounds or workers happen to run: same seed, same numbers. The
algorithm (sha256 of ``"seed:purpose:id:..."``, 63 bits) is fixed: changing it would change
every split and condition already cached or published.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, purpose: str, *ids: int) -> int:
    """A 63-bit seed unique to ``purpose`` and ``ids`` (client id, round, ...)."""
    text = ":".join([str(seed), purpose, *map(str, ids)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def rng_for(seed: int, purpose: str, *ids: int) -> np.random.Generator:
    """A generator for one purpose and ids, independent of every other purpose's."""
    return np.random.default_rng(derive_seed(seed, purpose, *ids))
