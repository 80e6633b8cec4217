"""simfl's seeding is the partitioners package's: one implementation of derive_seed / rng_for.

Partitions, conditions, client sampling, local shuffles and fault injection must all derive
their seeds the same way (sha256 of ``"seed:purpose:ids"``); ``partitioners`` is usable without
simfl, so the implementation lives there and this module re-exports it for simfl's code.
"""

from __future__ import annotations

from partitioners.seeding import derive_seed, rng_for

__all__ = ["derive_seed", "rng_for"]
