"""Run checkpoints: everything a run needs to continue after its last complete round.

A cluster job has a wall-time limit and may be preempted; a 120-round run killed at round 110
should not start again from round 0. After every ``tracking.checkpoint_every`` rounds the
server saves, into ``<run>/checkpoints/round-<k>/`` (a directory published atomically, so a
checkpoint is complete or absent; the previous one is removed only after the new one is in
place):

- ``checkpoint.pt``: the global (shared) model, the strategy's server state (FedAdam/FedYogi
  moments, FedAvgM momentum: :func:`~simfl.flower_compat.strategy_state.strategy_server_state`),
  the ``state_dict()`` of every :class:`Stateful` component the federation loop declares
  (:func:`stateful_components`: a privacy accountant, a simulated clock, FedBuff's clients in
  flight), the server process's RNG positions and the run's history (every round's record
  and client failure so far). Tensors and plain values only, loaded with
  ``torch.load(weights_only=True)``: a checkpoint is never unpickled.
- ``client-state/``: the clients' own state files (FedPer heads, FedBN statistics) as they were
  after round k, hard-linked where possible (clients replace their files by rename, never in
  place, so a link keeps round k's content).

Every other random choice in simfl is derived from (seed, purpose, client, round), so a run
resumed after round k repeats rounds k+1... exactly as an uninterrupted run does them.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
from flwr.app import Array, ArrayRecord

from simfl.atomic import publish_directory, reporting_full_disk
from simfl.engine.records import ClientFailure, RoundRecord
from simfl.errors import ScenarioError, SimflError
from simfl.flower_compat.strategy_state import (
    restore_strategy_server_state,
    strategy_server_state,
)

if TYPE_CHECKING:
    from simfl.tracking.callbacks import History

CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_FILE = "checkpoint.pt"
CLIENT_STATE_DIR = "client-state"
FORMAT = 1
_PENDING_PREFIX = "pending-"
_ROUND_DIR = re.compile(r"^round-(\d{6,})$")


@runtime_checkable
class Stateful(Protocol):
    """A component of a run whose state outlives a round (a strategy, a server callback, the
    round planner, the federation loop): ``state_dict()`` returns that state as tensors and
    plain values (never objects: a checkpoint is loaded ``weights_only``), in containers of
    its own, so that a round running after the snapshot cannot change it."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class RunCheckpoint:
    """A loaded checkpoint: where the run stood after ``server_round``."""

    directory: Path
    server_round: int
    arrays: dict[str, torch.Tensor]
    strategy: dict[str, Any]
    components: dict[str, dict[str, Any]]
    rng: dict[str, Any]
    rounds: list[RoundRecord]
    failures: list[ClientFailure] = field(default_factory=list)

    def global_arrays(self) -> ArrayRecord:
        return array_record(self.arrays)

    def restore(self, strategy: Any, components: Mapping[str, Stateful]) -> ArrayRecord:
        """Put the strategy, the run's stateful ``components`` and RNGs back; return the
        global model. The components must be the ones the checkpoint holds: a state left at
        its start would make the resumed run silently differ from an uninterrupted one."""
        if sorted(components) != sorted(self.components):
            raise SimflError(
                f"checkpoint {self.directory.name} holds the state of "
                f"{sorted(self.components) or 'no component'}, but this run has "
                f"{sorted(components) or 'none'}; remove it to rerun the run from round 0"
            )
        restore_strategy_server_state(strategy, self.strategy)
        for name, component in components.items():
            component.load_state_dict(self.components[name])
        _set_rng(self.rng)
        return self.global_arrays()

    def restore_client_state(self, state_dir: Path) -> None:
        """Replace ``state_dir`` with the clients' state files as they were after this round."""
        shutil.rmtree(state_dir, ignore_errors=True)
        state_dir.mkdir(parents=True)
        saved = self.directory / CLIENT_STATE_DIR
        if saved.is_dir():
            _link_or_copy_files(saved, state_dir)


@dataclass(frozen=True)
class CheckpointSnapshot:
    """A round's checkpoint taken but not yet written (see :class:`Checkpointer`)."""

    server_round: int
    payload: dict[str, Any]  # everything but the history
    client_state: Path | None  # where the clients' state files after that round are
    pending: bool  # ``client_state`` is a pending directory of hard links, removed once written


class Checkpointer:
    """Saves a :class:`RunCheckpoint` every ``every`` rounds, keeping only the newest.

    A round's checkpoint is taken in two steps. :meth:`snapshot` copies, when the round ends,
    what the next round changes: the global model, the strategy's and callbacks' state, the
    RNG positions, and the clients' state files (hard links into a pending directory).
    :meth:`write` publishes it once the round's record is complete, which is later when
    central evaluation overlaps the next round's training. A run killed between the two
    resumes from the previous checkpoint; a pending directory it left is removed here. A
    snapshot written at once (``pending=False``) copies nothing: it reads the live state.
    """

    def __init__(self, run_dir: Path, every: int, history: History, state_dir: Path) -> None:
        self.root = Path(run_dir) / CHECKPOINTS_DIR
        self.every, self.history, self.state_dir = every, history, state_dir
        for stale in self.root.glob(f"{_PENDING_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)

    def snapshot(
        self,
        server_round: int,
        arrays: ArrayRecord,
        strategy: Any,
        components: Mapping[str, Stateful],
        last_round: bool,
        pending: bool = True,
    ) -> CheckpointSnapshot | None:
        """The state after ``server_round`` (the global model, the strategy's server state and
        each of the run's stateful ``components``, by name); None when no checkpoint is due.
        ``pending``: it is written later, after the next round has begun changing that state,
        so it is copied now (the clients' state files as hard links)."""
        if self.every <= 0 or (server_round % self.every and not last_round):
            return None
        components = {name: component.state_dict() for name, component in components.items()}
        payload = {
            "format": FORMAT,
            "round": server_round,
            "arrays": tensors(arrays),
            "strategy": strategy_server_state(strategy),  # copies already
            "components": copy.deepcopy(components) if pending else components,
            "rng": _get_rng(),
        }
        client_state = self.state_dir if self.state_dir.is_dir() else None
        if client_state is not None and pending:
            client_state = self._pending_copy()
        return CheckpointSnapshot(server_round, payload, client_state, pending)

    def _pending_copy(self) -> Path:
        """The clients' state files as they are now, hard-linked into a pending directory;
        a full disk leaves no pending directory behind."""
        with reporting_full_disk(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            pending = Path(tempfile.mkdtemp(prefix=_PENDING_PREFIX, dir=self.root))
            try:
                _link_or_copy_files(self.state_dir, pending)
            except BaseException:
                shutil.rmtree(pending, ignore_errors=True)
                raise
        return pending

    def write(self, snapshot: CheckpointSnapshot) -> None:
        """Publish ``snapshot`` with the run's history up to its round; drop older ones."""
        server_round = snapshot.server_round
        history = {
            "rounds": [r.as_row() for r in self.history.rounds if r.round <= server_round],
            "failures": [vars(f) for f in self.history.failures if f.round <= server_round],
        }
        payload = {**snapshot.payload, "history": json.dumps(history)}

        def fill(staging: Path) -> None:
            _save(payload, staging / CHECKPOINT_FILE)
            if snapshot.client_state is not None:
                (staging / CLIENT_STATE_DIR).mkdir()
                _link_or_copy_files(snapshot.client_state, staging / CLIENT_STATE_DIR)

        final = self.root / f"round-{server_round:06d}"
        shutil.rmtree(final, ignore_errors=True)  # a round rerun after a resume
        try:
            publish_directory(final, fill)
        finally:
            if snapshot.pending and snapshot.client_state is not None:
                shutil.rmtree(snapshot.client_state, ignore_errors=True)
        for older in _round_dirs(self.root):
            if older != final:
                shutil.rmtree(older, ignore_errors=True)

    def discard(self) -> None:
        """The run completed: its checkpoints are no longer needed."""
        shutil.rmtree(self.root, ignore_errors=True)


def latest_checkpoint_dir(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    dirs = [
        d for d in _round_dirs(Path(run_dir) / CHECKPOINTS_DIR) if (d / CHECKPOINT_FILE).exists()
    ]
    return dirs[-1] if dirs else None


def latest_checkpoint_round(run_dir: Path) -> int:
    """The round the newest complete checkpoint of a run holds (0: none, the run restarts)."""
    directory = latest_checkpoint_dir(run_dir)
    return int(directory.name.split("-")[1]) if directory is not None else 0


def load_checkpoint(directory: Path, source: str) -> RunCheckpoint:
    """Read a checkpoint (``weights_only``: tensors and plain values, never pickled objects)."""
    try:
        data = torch.load(directory / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        history = json.loads(data["history"])
        return RunCheckpoint(
            directory,
            int(data["round"]),
            data["arrays"],
            data["strategy"],
            data["components"],
            data["rng"],
            [RoundRecord.from_row(row) for row in history["rounds"]],
            [ClientFailure(**failure) for failure in history["failures"]],
        )
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint gets the same line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "Weights only load failed" in str(error):
            reason = "it holds pickled objects, which weights_only loading refuses to unpickle"
        raise ScenarioError(
            f"{source}: checkpoint {directory.name} cannot be loaded ({reason}); "
            "remove it to rerun the run from round 0"
        ) from None


def _round_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and _ROUND_DIR.match(d.name))


def stateful_components(
    strategy: Any, round_plan: Any, server_callbacks: Sequence[Any]
) -> dict[str, Stateful]:
    """The run's parts with state of their own, by a name that is the same in every run of a
    scenario: ``strategy``, ``round-plan`` and ``callback-<class>`` (``-<n>`` for the n-th
    more of one class). Callbacks are named by class, not position, so a callback without
    state (one a test adds) does not rename the others."""
    found: dict[str, Stateful] = {}
    if isinstance(strategy, Stateful):
        found["strategy"] = strategy
    if isinstance(round_plan, Stateful):
        found["round-plan"] = round_plan
    seen: Counter[str] = Counter()
    for callback in server_callbacks:
        if isinstance(callback, Stateful):
            name = type(callback).__name__
            found[f"callback-{name}" + (f"-{seen[name]}" if seen[name] else "")] = callback
            seen[name] += 1
    return found


def tensors(arrays: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Copies of named arrays (an ``ArrayRecord``'s, or ndarrays) as tensors, dtypes kept: how
    a ``state_dict()`` holds a model or a momentum."""
    return {
        name: _tensor(array.numpy() if isinstance(array, Array) else array)
        for name, array in arrays.items()
    }


def array_record(state: Mapping[str, torch.Tensor]) -> ArrayRecord:
    """The ``ArrayRecord`` that :func:`tensors` saved, bit for bit."""
    return ArrayRecord({name: Array(tensor.numpy()) for name, tensor in state.items()})


def plain(value: Any) -> Any:
    """``value`` (reply metrics: numbers, lists of them, dicts of those) without NumPy scalars,
    which a ``weights_only`` load refuses; the numbers are the same."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def _link_or_copy_files(source: Path, target: Path) -> None:
    for entry in source.iterdir():
        if entry.is_file():
            try:
                os.link(entry, target / entry.name)
            except OSError:  # another file system, or links not supported
                shutil.copy2(entry, target / entry.name)


def _save(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` through a Python file: torch keeps that file's failed write in the chain
    of the error it raises (not so with a path), so a full disk is one line naming ``path``."""
    with reporting_full_disk(path), open(path, "wb") as file:
        torch.save(payload, file)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, copy=True))


def _get_rng() -> dict[str, Any]:
    """The server process's global RNG positions (Python, NumPy, torch)."""
    version, internal, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }


def _set_rng(rng: dict[str, Any]) -> None:
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(rng["torch"])
