"""An exclusive claim on a sweep cell that expires when its owner stops renewing it.

Two sweep processes (two SLURM array tasks, a job launched twice, a requeued job on another
node) may reach the same cell. The claim is a lock file created atomically with ``link(2)``
(fails if the file exists, also on NFS; the file is complete the moment it appears), holding
who owns it and when they last renewed it. A heartbeat thread renews it every quarter lease.

A claim is *stale* when its owner is known dead (same host, process gone) or has not renewed
it for longer than its lease (any host: a preempted or crashed node cannot renew); a stale
claim is broken and taken over. Breaking and renewing run under a short ``filelock`` guard
(``flock``, which the kernel releases when a process dies, so the guard itself never goes
stale): a renewer can never overwrite a claim that a breaker has just handed to someone else,
and an owner that finds its claim taken knows it lost it (:attr:`CellLease.lost`).

Leases compare wall-clock times written by different hosts, so they assume the clocks of a
cluster's nodes agree to well within a lease (NTP); a dead process on the same host is
recognised at once, without waiting for the lease.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from simfl.atomic import fsync_directory, write_atomically, write_json

DEFAULT_LEASE_S = 300.0


@dataclass(frozen=True)
class LeaseOwner:
    """What a lock file says: who holds the claim and until when it counts."""

    token: str
    host: str
    pid: int
    renewed_at: float  # time.time() of the last renewal, on the owner's clock
    lease_s: float

    def is_stale(self, now: float | None = None) -> bool:
        """Not renewed within its lease, or its process is gone (same host only)."""
        now = time.time() if now is None else now
        if now - self.renewed_at > self.lease_s:
            return True
        return self.host == socket.gethostname() and not _pid_alive(self.pid)


def read_owner(path: Path) -> LeaseOwner | None:
    """The owner recorded in ``path``; None if there is no lock (or it is unreadable)."""
    try:
        data = json.loads(path.read_text())
        return LeaseOwner(
            str(data["token"]),
            str(data["host"]),
            int(data["pid"]),
            float(data["renewed_at"]),
            float(data["lease_s"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        # Not ours to judge as live: a lock we cannot read counts as stale after its age.
        try:
            age_from = path.stat().st_mtime
        except FileNotFoundError:
            return None
        return LeaseOwner("unreadable", "?", -1, age_from, DEFAULT_LEASE_S)


class CellLease:
    """A held claim: renewed in the background until :meth:`release`."""

    def __init__(self, path: Path, owner: LeaseOwner) -> None:
        self.path, self.owner = path, owner
        self.lost = threading.Event()  # set if another process took the claim over
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, name="simfl-lease", daemon=True)
        self._thread.start()

    @classmethod
    def acquire(cls, path: Path, lease_s: float = DEFAULT_LEASE_S) -> CellLease | None:
        """Claim ``path`` exclusively, breaking a stale claim; None if someone live holds it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            owner = LeaseOwner(
                secrets.token_hex(8), socket.gethostname(), os.getpid(), time.time(), lease_s
            )
            if _create_exclusively(path, owner):
                return cls(path, owner)
            current = read_owner(path)
            if current is not None and not current.is_stale():
                return None
            if current is not None:
                _break_if_still(path, current)
        return None

    def release(self) -> None:
        """Stop renewing and remove the lock file if it is still ours."""
        self._stop.set()
        self._thread.join()
        with _guard(self.path):
            current = read_owner(self.path)
            if current is not None and current.token == self.owner.token:
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> CellLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def renew(self) -> bool:
        """Write a fresh ``renewed_at``; False (and :attr:`lost` set) if the claim is not ours."""
        with _guard(self.path):
            current = read_owner(self.path)
            if current is None or current.token != self.owner.token:
                self.lost.set()
                return False
            self.owner = LeaseOwner(**{**asdict(self.owner), "renewed_at": time.time()})
            write_json(self.path, asdict(self.owner))
        return True

    def _heartbeat(self) -> None:
        interval = max(0.05, self.owner.lease_s / 4)
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    return
            except OSError:  # a transient file-system error: try again next beat
                continue


def _create_exclusively(path: Path, owner: LeaseOwner) -> bool:
    """Publish a complete lock file at ``path`` unless one exists (``link`` is atomic)."""
    staging = path.with_name(f".{path.name}.{owner.token}.new")
    write_atomically(staging, lambda tmp: tmp.write_text(json.dumps(asdict(owner))))
    try:
        os.link(staging, path)
    except FileExistsError:
        return False
    finally:
        staging.unlink(missing_ok=True)
    fsync_directory(path.parent)
    return True


def _break_if_still(path: Path, stale: LeaseOwner) -> None:
    """Remove ``path`` if it still holds exactly the stale claim we read (not a fresh one)."""
    with _guard(path):
        current = read_owner(path)
        if current is not None and current == stale and current.is_stale():
            path.unlink(missing_ok=True)


def _guard(path: Path) -> FileLock:
    return FileLock(path.with_name(path.name + ".guard"), timeout=60)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
