"""Ray started in the background (:class:`simfl.engine.ray_start.RayStart`), in a fresh process:
its daemons outlive the start (Linux ties them to the thread that forked them, which must stay),
a failed start reaches the waiting thread as one SimflError, the daemons a local runtime never
uses are stopped at once (through the private Ray API checked here) while tasks still run, and
close() shuts down and ends the thread."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, threading, time
import psutil, ray
from simfl.engine.ray_start import RayStart
from simfl.errors import SimflError

def start_threads():
    return [t.name for t in threading.enumerate() if t.name == "simfl-ray-start"]

failed = RayStart(None, {"num_cpus": -1}, background=True)
try:
    failed.wait()
    error = None
except SimflError as caught:
    error = str(caught)
failed.close()
after_failure = {"error": error, "initialized": ray.is_initialized(), "threads": start_threads()}

start = RayStart(None, {"num_cpus": 1}, background=True)
start.wait()
time.sleep(2)  # past the start: a daemon tied to an ended thread would be gone by now

@ray.remote
def one():
    return 1

value = ray.get(one.remote(), timeout=120)
running = start_threads()
node = ray._private.worker._global_node  # the private API that stops the unused daemons
kills = all(callable(getattr(node, f"kill_{name}", None)) for name in ("monitor", "dashboard"))
kept = sorted(node.all_processes)
scripts = ("autoscaler/_private/monitor.py", "dashboard/dashboard.py", "_private/log_monitor.py")
alive = [
    script
    for child in psutil.Process().children(recursive=True)
    for script in scripts
    if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    and script in " ".join(child.cmdline())
]
start.close()
start.close()  # idempotent
print(json.dumps({
    "after_failure": after_failure,
    "started": start.started,
    "value": value,
    "threads_while_running": running,
    "initialized_after_close": ray.is_initialized(),
    "threads_after_close": start_threads(),
    "has_kills": kills,
    "processes_kept": kept,
    "unused_alive": alive,
}))
"""


def test_background_start_keeps_ray_up_reports_failures_and_closes() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    failure = result["after_failure"]
    assert failure["error"].startswith("could not start or join Ray (address=None): ")
    assert not failure["initialized"] and failure["threads"] == []
    assert result["started"] and result["value"] == 1
    assert result["threads_while_running"] == ["simfl-ray-start"]
    assert not result["initialized_after_close"] and result["threads_after_close"] == []
    assert result["has_kills"] and result["unused_alive"] == []
    kept = result["processes_kept"]
    assert {"gcs_server", "raylet"} <= set(kept), kept
    assert not {"monitor", "dashboard", "log_monitor"} & set(kept), kept
