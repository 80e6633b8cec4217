"""Reading device and availability traces: CSV, Parquet, JSON, and FedScale's pickles.

FedScale publishes its device capacities and client behaviour as Python pickles; ``pickle.load``
would run whatever a file asks for, so :func:`load_plain_pickle` uses an unpickler that refuses
every class and function (only the opcodes for dicts, lists, tuples, sets, strings, bytes,
numbers, booleans and None remain) and checks the result holds nothing else. Every problem is a
:class:`TraceError` naming the file and what is wrong; preparation turns it into a one-line
scenario error with the key.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEVICE_COLUMNS = ("ms_per_sample", "down_kbps", "up_kbps", "latency_ms")
PLAIN_TYPES = (dict, list, tuple, set, frozenset, str, bytes, int, float, bool, type(None))


class TraceError(ValueError):
    """A trace file that cannot be used; the message names the file."""


class PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that builds plain data only: any class or callable is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"holds {module}.{name}; only plain data (dict, list, str, numbers) is accepted"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("holds a persistent reference; only plain data is accepted")


def load_plain_pickle(path: Path) -> Any:
    """A pickle's content if it is plain data (see :class:`PlainDataUnpickler`)."""
    try:
        data = PlainDataUnpickler(io.BytesIO(path.read_bytes())).load()
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad trace
        raise TraceError(f"{path}: not a plain-data pickle: {error}") from None
    _check_plain(data, path)
    return data


def _check_plain(value: Any, path: Path) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if not isinstance(item, PLAIN_TYPES):
            raise TraceError(f"{path}: holds a {type(item).__name__}; only plain data allowed")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)


def read_table(path: Path, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Columns of a CSV, Parquet or JSON (records or columns) file, as float arrays."""
    import pandas as pd

    suffix = path.suffix.lower()
    if not path.is_file():
        raise TraceError(f"{path}: no such file")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix == ".json":
            frame = pd.DataFrame(json.loads(path.read_text()))
        else:
            raise TraceError(f"{path}: unknown trace format; use .csv, .parquet, .json or .pkl")
    except TraceError:
        raise
    except Exception as error:  # noqa: BLE001 - any parse failure is a malformed trace
        raise TraceError(f"{path}: cannot be read: {str(error).splitlines()[0]}") from None
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise TraceError(f"{path}: missing columns {missing}; expected {list(columns)}")
    out = {}
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            raise TraceError(f"{path}: column {column!r} holds a non-numeric or missing value")
        out[column] = values
    return out


@dataclass(frozen=True)
class DeviceTrace:
    """Per-client device figures, in trace order (client i of the run is row i)."""

    ms_per_sample: np.ndarray
    down_kbps: np.ndarray
    up_kbps: np.ndarray
    latency_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.ms_per_sample)


def read_device_trace(path: Path) -> DeviceTrace:
    """A table with ``client`` and :data:`DEVICE_COLUMNS`, or FedScale's device-capacity pickle
    (``{client: {"computation": ms, "communication": kbps}}``; FedScale counts a training step
    as three times ``computation`` per sample, so ms_per_sample = 3 · computation, and uses
    ``communication`` both ways, with no latency)."""
    if path.suffix.lower() in (".pkl", ".pickle"):
        data = load_plain_pickle(path)
        if not isinstance(data, dict) or not data:
            raise TraceError(f"{path}: expected a non-empty dict of client -> capacities")
        rows = []
        for client in sorted(data, key=str):
            entry = data[client]
            try:
                rows.append((3.0 * float(entry["computation"]), float(entry["communication"])))
            except (TypeError, KeyError, ValueError):
                raise TraceError(
                    f"{path}: client {client!r} needs numeric 'computation' and 'communication'"
                ) from None
        compute, network = np.array(rows).T
        trace = DeviceTrace(compute, network, network.copy(), np.zeros_like(compute))
    else:
        table = read_table(path, ("client", *DEVICE_COLUMNS))
        order = np.argsort(table["client"], kind="stable")
        trace = DeviceTrace(*(table[column][order] for column in DEVICE_COLUMNS))
    if np.any(trace.ms_per_sample < 0) or np.any(trace.latency_ms < 0):
        raise TraceError(f"{path}: ms_per_sample and latency_ms must be >= 0")
    if np.any(trace.down_kbps <= 0) or np.any(trace.up_kbps <= 0):
        raise TraceError(f"{path}: down_kbps and up_kbps must be > 0")
    return trace


@dataclass(frozen=True)
class AvailabilityTrace:
    """Online intervals per client (seconds within each client's period), in trace order."""

    intervals: list[np.ndarray]  # per client, shape (k, 2): [start, end)
    periods: np.ndarray  # seconds; each client's pattern repeats with its period

    def __len__(self) -> int:
        return len(self.intervals)


def read_availability_trace(path: Path, period_s: float) -> AvailabilityTrace:
    """A table ``client, start_s, end_s`` (online intervals within ``period_s``) or FedScale's
    behaviour pickle (``{client: {"active": [...], "inactive": [...], "finish_time": F}}``,
    online from each active to the next inactive time, repeating every F seconds)."""
    if path.suffix.lower() in (".pkl", ".pickle"):
        return _fedscale_behaviour(path, load_plain_pickle(path))
    table = read_table(path, ("client", "start_s", "end_s"))
    clients = np.unique(table["client"])
    intervals = []
    for client in clients:
        rows = table["client"] == client
        spans = np.column_stack([table["start_s"][rows], table["end_s"][rows]])
        intervals.append(_checked(spans[np.argsort(spans[:, 0])], period_s, path, client))
    return AvailabilityTrace(intervals, np.full(len(clients), period_s))


def _fedscale_behaviour(path: Path, data: Any) -> AvailabilityTrace:
    if not isinstance(data, dict) or not data:
        raise TraceError(f"{path}: expected a non-empty dict of client -> behaviour")
    intervals, periods = [], []
    for client in sorted(data, key=str):
        entry = data[client]
        try:
            active = np.asarray(entry["active"], dtype=float)
            inactive = np.asarray(entry["inactive"], dtype=float)
            period = float(entry["finish_time"])
        except (TypeError, KeyError, ValueError):
            raise TraceError(
                f"{path}: client {client!r} needs 'active', 'inactive' and 'finish_time'"
            ) from None
        if len(active) != len(inactive) or period <= 0:
            raise TraceError(f"{path}: client {client!r}: active/inactive lengths or period")
        spans = np.column_stack([active, inactive])
        intervals.append(_checked(spans, period, path, client))
        periods.append(period)
    return AvailabilityTrace(intervals, np.array(periods))


def _checked(spans: np.ndarray, period: float, path: Path, client: Any) -> np.ndarray:
    starts, ends = spans[:, 0], spans[:, 1]
    if np.any(starts < 0) or np.any(ends > period) or np.any(ends <= starts):
        raise TraceError(
            f"{path}: client {client!r}: intervals must satisfy 0 <= start < end <= period "
            f"({period} s)"
        )
    if np.any(starts[1:] < ends[:-1]):
        raise TraceError(f"{path}: client {client!r}: online intervals overlap")
    return spans
