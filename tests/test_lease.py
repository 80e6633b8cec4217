"""Cell leases: exclusive, renewed by a heartbeat, taken over once their owner stops renewing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from simfl.sweep.lease import CellLease, read_owner


def _foreign_lock(path: Path, renewed_ago: float, lease_s: float) -> None:
    """A lock written by a process on another host (which we cannot ask whether it lives)."""
    owner = {
        "token": "f0reign",
        "host": "node-that-was-preempted",
        "pid": 4242,
        "renewed_at": time.time() - renewed_ago,
        "lease_s": lease_s,
    }
    path.write_text(json.dumps(owner))


def test_a_lease_is_exclusive_and_released(tmp_path):
    path = tmp_path / ".cell.LOCK"
    lease = CellLease.acquire(path, lease_s=30)
    assert lease is not None and read_owner(path).token == lease.owner.token
    assert read_owner(path).host == socket.gethostname()
    assert CellLease.acquire(path, lease_s=30) is None  # held by a live owner
    lease.release()
    assert not path.exists()
    again = CellLease.acquire(path, lease_s=30)
    assert again is not None
    again.release()


def test_the_heartbeat_renews_the_lease(tmp_path):
    path = tmp_path / ".cell.LOCK"
    with CellLease.acquire(path, lease_s=0.4) as lease:
        first = read_owner(path).renewed_at
        time.sleep(1.0)  # 2.5 leases: without renewal it would have expired
        assert read_owner(path).renewed_at > first
        assert not read_owner(path).is_stale()
        assert CellLease.acquire(path, lease_s=0.4) is None
        assert not lease.lost.is_set()


def test_a_foreign_hosts_lock_is_taken_over_only_after_its_lease(tmp_path):
    path = tmp_path / ".cell.LOCK"
    _foreign_lock(path, renewed_ago=0.0, lease_s=1.0)
    assert CellLease.acquire(path, lease_s=30) is None  # the other host may still be working
    time.sleep(1.2)  # it stopped renewing: the lease runs out
    with CellLease.acquire(path, lease_s=30) as lease:
        assert lease is not None and read_owner(path).token == lease.owner.token


def test_an_expired_foreign_lock_is_taken_over_at_once(tmp_path):
    path = tmp_path / ".cell.LOCK"
    _foreign_lock(path, renewed_ago=3600.0, lease_s=600.0)
    with CellLease.acquire(path) as lease:
        assert lease is not None


def test_a_dead_process_on_this_host_does_not_hold_its_lock(tmp_path):
    path = tmp_path / ".cell.LOCK"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    owner = {
        "token": "t",
        "host": socket.gethostname(),
        "pid": int(gone.stdout),
        "renewed_at": time.time(),
        "lease_s": 3600.0,
    }
    path.write_text(json.dumps(owner))
    with CellLease.acquire(path) as lease:  # no need to wait an hour
        assert lease is not None


def test_an_owner_learns_that_its_lease_was_taken_over(tmp_path):
    path = tmp_path / ".cell.LOCK"
    lease = CellLease.acquire(path, lease_s=0.2)
    _foreign_lock(path, renewed_ago=0.0, lease_s=60.0)  # someone broke it and claimed it
    assert lease.lost.wait(timeout=5)
    lease.release()
    assert read_owner(path).token == "f0reign"  # not ours to remove


RACE = """
import sys, time
from pathlib import Path
from simfl.sweep.lease import CellLease
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
lease = CellLease.acquire(Path(sys.argv[1]), lease_s=30)
print("won" if lease else "lost", flush=True)
time.sleep(2.0)
"""


def test_of_many_processes_racing_for_a_stale_lock_exactly_one_wins(tmp_path):
    path = tmp_path / ".cell.LOCK"
    _foreign_lock(path, renewed_ago=3600.0, lease_s=60.0)
    start = time.time() + 2.0
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(path), str(start)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    outcomes = sorted(racer.communicate(timeout=60)[0].strip() for racer in racers)
    assert outcomes == ["lost"] * 5 + ["won"]
