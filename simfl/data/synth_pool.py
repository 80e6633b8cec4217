"""A pool of spawned processes that synthesizes speakers in parallel, results in speaker order.

Why spawn (not fork): the parent may hold torch/Ray threads. As with any spawn pool, a calling
script needs an ``if __name__ == "__main__":`` guard. Workers are reused safely because each
speaker gets a freshly loaded eSpeak (:mod:`simfl.data.espeak`), so a speaker's audio does not
depend on the worker that made it or on what that worker did before.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Protocol, TypeVar

#: ``progress(speakers_done, speakers_total)``.
ProgressFn = Callable[[int, int], None]
Clips = TypeVar("Clips")


class SpeakerCount(Protocol):
    """Settings of a dataset made of synthetic speakers: the pool only needs their number."""

    @property
    def num_speakers(self) -> int: ...


def synthesize_speakers(
    settings: SpeakerCount,
    worker: Callable[[SpeakerCount, int], Clips],
    num_workers: int | None = None,
    progress: ProgressFn | None = None,
) -> list[Clips]:
    """``worker(settings, i)`` for every speaker ``i``, in speaker order.

    ``worker`` must be a top-level function (spawned processes import it by name).
    """
    total = settings.num_speakers
    workers = max(1, min(num_workers or _available_cpus(), total))
    results: list[Clips | None] = [None] * total
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(worker, settings, i): i for i in range(total)}
        try:
            for done, future in enumerate(as_completed(futures), 1):
                results[futures[future]] = future.result()
                if progress is not None:
                    progress(done, total)
        except BaseException:
            pool.shutdown(cancel_futures=True)  # do not finish the remaining speakers
            raise
    return [r for r in results if r is not None]


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
