"""Full garbage collections that skip the objects a run keeps from start to end.

Why: a full (generation 2) collection walks every object the collector tracks, and torch,
Ray, Flower and a population's index put millions of them in the driver and in each actor, so
a full collection of a large population's driver is on a round's critical path while every
core is busy (``gc.callbacks`` times them). What exists when the
rounds begin lives until the run ends, so :func:`gc.freeze` moves it to the permanent
generation that collections skip (the standard library's remedy for long-lived heaps); the
rounds' own garbage is still collected as usual. Frozen objects go back to the collector when
the run ends, so a sweep's finished cells leave no uncollectable cycles behind.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Inside: what exists now is skipped by garbage collections; after: collected again."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def refreeze() -> None:
    """For a process that serves run after run (a Ray actor): the previous run's objects go
    back to the collector and everything alive now is frozen instead."""
    gc.unfreeze()
    gc.freeze()
