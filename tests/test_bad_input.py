"""Every bad scenario file is refused in one line, exit 2, with nothing written to results/.

Through ``typer.testing.CliRunner`` (fast, same click group a shell reaches), plus one
subprocess for the real exit codes, and real runs for recorder failures at start (W&B online
without credentials, an unwritable results directory, a full disk).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_end_to_end import TINY
from typer.testing import CliRunner

from simfl.cli import app
from simfl.config import MAX_SCENARIO_BYTES

GARBAGE = bytes(range(256)) * 64  # every byte value, NULs included


def _directory(tmp: Path) -> Path:
    (tmp / "scenario.toml").mkdir()
    return tmp / "scenario.toml"


def _unreadable(tmp: Path) -> Path:
    path = tmp / "private.toml"
    path.write_text("[scenario]\n")
    path.chmod(0)
    return path


def _write(name: str, content: bytes):
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(content)
        return tmp / name

    return make


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe.toml")  # reading it would block forever
    return tmp / "pipe.toml"


def _symlink_loop(tmp: Path) -> Path:
    (tmp / "loop.toml").symlink_to(tmp / "loop.toml")
    return tmp / "loop.toml"


BAD_FILES = {
    "directory": (_directory, "is a directory"),
    "binary garbage": (_write("garbage.toml", GARBAGE), "not a text file"),
    "binary without NUL bytes": (_write("latin.toml", GARBAGE[1:256] * 8), "not UTF-8"),
    "invalid UTF-8": (_write("utf.toml", b'[scenario]\nname = "caf\xe9"\n'), "not UTF-8"),
    "empty file": (
        _write("empty.toml", b""),
        "missing required sections [scenario], [data], [partition], [model], [strategy]",
    ),
    "only comments": (_write("comments.toml", b"# nothing\n\n"), "missing required sections"),
    "huge file": (
        _write("huge.toml", b"# padding\n" * (MAX_SCENARIO_BYTES // 10 + 1)),
        "too big for a scenario file",
    ),
    "deeply nested arrays": (
        _write("deep.toml", b"x = " + b"[" * 50_000 + b"]" * 50_000),
        "nested more than 32 levels",
    ),
    "deeply nested tables": (
        _write("tables.toml", b"[" + b".".join([b"t"] * 40) + b"]\n"),
        "nested more than 32 levels",
    ),
    "not TOML": (_write("text.toml", b"this is not toml\n"), "not valid TOML"),
    "duplicate key": (_write("dup.toml", b"[scenario]\nname='a'\nname='b'\n"), "not valid TOML"),
    "section that is a value": (_write("value.toml", b"scenario = 5\n"), "key 'scenario'"),
    "missing file": (lambda tmp: tmp / "absent.toml", "no such scenario file"),
    "fifo": (_fifo, "not a regular file"),
    "symlink loop": (_symlink_loop, "cannot read the scenario file"),
}
if os.geteuid() != 0:  # root reads any file: test_unreadable_file_is_one_line covers it
    BAD_FILES["unreadable"] = (_unreadable, "Permission denied")


@pytest.mark.parametrize("command", ["run", "validate", "sweep"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_one_line_exit_2_nothing_written(tmp_path, monkeypatch, case, command):
    monkeypatch.chdir(tmp_path)  # results/ would be created here
    make, expected = BAD_FILES[case]
    path = make(tmp_path)
    result = CliRunner().invoke(app, [command, str(path)])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert len(lines) == 1, result.stderr
    # A sweep file that parses but has no [sweep] table is refused for that first.
    assert expected in lines[0] or (command == "sweep" and "no [sweep] table" in lines[0])
    assert path.name in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "results").exists()


def test_a_bom_is_not_an_error(tmp_path):
    quickstart = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + quickstart.read_bytes())
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0 and "valid; hash" in result.stdout


@pytest.mark.parametrize("case", ["directory", "binary garbage", "empty file"])
def test_exit_codes_in_a_real_process(tmp_path, case):
    make, expected = BAD_FILES[case]
    path = make(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "simfl.cli", "run", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr
    assert not (tmp_path / "results").exists()


def _without_file_permission_override() -> list[str]:
    """A command prefix under which even root obeys file permissions (drops CAP_DAC_*)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: every file is readable")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


def test_unreadable_file_is_one_line(tmp_path):
    path = _unreadable(tmp_path)
    done = subprocess.run(
        [*_without_file_permission_override(), sys.executable, "-m", "simfl.cli", "run", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "private.toml: cannot read the scenario file: Permission denied" in lines[0]
    assert not (tmp_path / "results").exists()


# ----------------------------------------------------------- recorders that cannot start


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_cache) -> Path:
    """The tiny scenario on the session's prepared cache: a run writes only its results."""
    root = tmp_path_factory.mktemp("recorders")
    text = TINY.format(results=root / "results", cache=tiny_cache)
    (root / "tiny.toml").write_text(text.replace("rounds = 2", "rounds = 1"))
    return root


def _simfl(workspace: Path, *args: str, env: dict[str, str] | None = None, preexec=None):
    return subprocess.run(
        [sys.executable, "-m", "simfl.cli", "run", str(workspace / "tiny.toml"), *args],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=600,
        env=env or dict(os.environ),
        preexec_fn=preexec,
    )


def test_wandb_online_without_credentials_fails_the_run_in_one_line(workspace, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path), "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config")}
    done = _simfl(workspace, "--wandb", "online", env=env)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 2 and "W&B (online) could not start" in lines[0], done.stderr
    assert "No API key" in lines[0] and lines[1].startswith("results (marked failed)")
    (run_dir,) = (workspace / "results").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "W&B (online)" in summary["error"]
    assert not list(run_dir.glob("wandb/*run-*"))  # no W&B run exists, so none is "running"


def test_unwritable_results_directory_is_one_line_and_writes_nothing(workspace, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = _simfl(workspace, "--set", f"tracking.results_dir={blocker / 'results'}")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "results directory could not start" in lines[0] and "Not a directory" in lines[0]
    assert blocker.read_text() == "not a directory"


def _small_disk() -> None:
    """Files past 16 KiB cannot be written (EFBIG), as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))


def test_a_full_disk_at_start_is_one_line(workspace, tmp_path):
    results = tmp_path / "full"
    done = _simfl(
        workspace,
        "--wandb",
        "disabled",
        "--set",
        f"tracking.results_dir={results}",
        preexec=_small_disk,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    # The first file too large: the partition's cache (if no earlier test built it) or figure.
    assert "cannot write" in lines[0] and "[Errno 27] File too large (EFBIG)" in lines[0]
    assert "Traceback" not in done.stderr
