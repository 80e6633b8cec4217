"""Several virtual clients in one actor call: a batch's contents travel as one RecordDict.

Why: a small client trains in milliseconds, but each Flower message also pays a Ray call round
trip, the ClientApp's pickling and a hand-off between Flower's worker threads, time in which the
actor idles (``simfl bench scale`` shows the effect). Flower has no batching: its
engine runs one message per actor call. simfl's :class:`~simfl.flower_compat.grid.
VirtualClientGrid` therefore packs the messages of several partitions into one message per call
(:func:`pack_contents`), and the ClientApp's batch mod (:mod:`simfl.engine.client_app`) runs
each client's mods and handler on its own content and packs the replies the same way. Records
that every member shares (the global model) travel once.

This module is only the encoding: a batch is a RecordDict with a header record
(:data:`BATCH_KEY`) naming its size and shared records; member ``i``'s own records are stored
as ``"<name>#<i>"``. A member's failure travels as an :data:`ERROR_KEY` record of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from flwr.app import ConfigRecord, Error, RecordDict

#: The header record of a batch: ``size`` (members) and ``shared`` (records every member has).
BATCH_KEY = "simfl.batch"
#: A member's failure: ``code`` and ``reason``, as in Flower's ``Error``.
ERROR_KEY = "simfl.error"
SEPARATOR = "#"


def is_batch(content: RecordDict) -> bool:
    return BATCH_KEY in content


def pack_contents(contents: Sequence[RecordDict]) -> RecordDict:
    """One RecordDict holding ``contents``; a record that is the same object in every member
    (the strategy gives every client the same global model) is stored once."""
    first, others = contents[0], contents[1:]
    shared = [name for name, record in first.items() if all(c.get(name) is record for c in others)]
    packed = RecordDict({name: first[name] for name in shared})
    for index, content in enumerate(contents):
        for name, record in content.items():
            if name not in shared:
                packed[f"{name}{SEPARATOR}{index}"] = record
    packed[BATCH_KEY] = ConfigRecord({"size": len(contents), "shared": shared})
    return packed


def member_contents(packed: RecordDict) -> list[RecordDict]:
    """The members' contents, in the order :func:`pack_contents` was given them."""
    header = packed[BATCH_KEY]
    shared = list(header["shared"])  # type: ignore[arg-type]
    members = [
        RecordDict({name: packed[name] for name in shared})
        for _ in range(int(header["size"]))  # type: ignore[arg-type]
    ]
    for key, record in packed.items():
        if key == BATCH_KEY or key in shared:
            continue
        name, _, index = key.rpartition(SEPARATOR)
        members[int(index)][name] = record
    return members


def error_record(error: Error) -> RecordDict:
    """A member's failure, as a member's content."""
    return RecordDict({ERROR_KEY: ConfigRecord({"code": error.code, "reason": error.reason})})


def member_error(content: RecordDict) -> Error | None:
    """The failure a member's content carries, if it is one."""
    if ERROR_KEY not in content:
        return None
    record = content[ERROR_KEY]
    return Error(code=int(record["code"]), reason=str(record["reason"]))  # type: ignore[arg-type]


def even_batches(count: int, batches: int) -> list[range]:
    """``range(count)`` cut into ``batches`` consecutive runs whose sizes differ by one at most
    (the larger first)."""
    batches = max(1, min(count, batches))
    size, larger = divmod(count, batches)
    runs, start = [], 0
    for batch in range(batches):
        stop = start + size + (batch < larger)
        runs.append(range(start, stop))
        start = stop
    return runs
