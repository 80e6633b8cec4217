"""simfl.atomic: content, permissions, failures, full disks and publish races, on the real file
system."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from simfl.atomic import (
    append_line,
    publish_directory,
    read_complete_lines,
    write_atomically,
    write_json,
    write_table,
    write_text,
)
from simfl.errors import ResultsWriteError


@pytest.fixture
def umask_027() -> Iterator[None]:
    """Run the test under umask 027 (set once here, in the test's only thread)."""
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writers_write_their_content(tmp_path: Path) -> None:
    write_text(tmp_path / "a" / "note.txt", "hello\n")
    write_json(tmp_path / "b.json", {"z": 1, "a": Path("/x")})
    frame = pd.DataFrame({"round": [0, 1], "accuracy": [0.25, 0.5]})
    write_table(tmp_path / "metrics", frame)
    assert (tmp_path / "a" / "note.txt").read_text() == "hello\n"
    assert (tmp_path / "b.json").read_text() == '{\n  "z": 1,\n  "a": "/x"\n}\n'
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "metrics.parquet"), frame)
    assert (tmp_path / "metrics.csv").read_text() == "round,accuracy\n0,0.25\n1,0.5\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a", "b.json", "metrics.csv", "metrics.parquet"
    ]  # fmt: skip


def test_new_files_and_directories_get_the_mode_the_umask_gives(
    tmp_path: Path, umask_027: None
) -> None:
    write_text(tmp_path / "file.txt", "x")
    publish_directory(tmp_path / "dir", lambda tmp: (tmp / "inner").write_text("y"))
    assert mode(tmp_path / "file.txt") == 0o640
    assert mode(tmp_path / "dir") == 0o750
    assert mode(tmp_path / "dir" / "inner") == 0o640


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    write_text(target, "old")

    def broken(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(target, broken)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_replacing_a_file_swaps_the_whole_content(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_json(target, {"round": 1, "pad": "x" * 10_000})
    write_json(target, {"round": 2})
    assert json.loads(target.read_text()) == {"round": 2}


def test_a_failing_fill_publishes_nothing(tmp_path: Path) -> None:
    def broken(tmp: Path) -> None:
        (tmp / "part").write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        publish_directory(tmp_path / "store", broken)
    assert list(tmp_path.iterdir()) == []


def test_second_publisher_loses_quietly_and_the_first_copy_stays(tmp_path: Path) -> None:
    final = tmp_path / "store"
    both_filled = threading.Barrier(2)
    results: dict[str, bool] = {}

    def publisher(name: str) -> None:
        def fill(tmp: Path) -> None:
            (tmp / "who").write_text(name)
            both_filled.wait(timeout=10)  # both have a complete copy before either renames

        results[name] = publish_directory(final, fill)

    threads = [threading.Thread(target=publisher, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winner = (final / "who").read_text()
    assert sorted(results.values()) == [False, True] and results[winner] is True
    assert [p.name for p in tmp_path.iterdir()] == ["store"]
    assert [p.name for p in final.iterdir()] == ["who"]


def test_publishing_over_an_existing_directory_keeps_it(tmp_path: Path) -> None:
    final = tmp_path / "store"
    assert publish_directory(final, lambda tmp: (tmp / "v").write_text("1")) is True
    assert publish_directory(final, lambda tmp: (tmp / "v").write_text("2")) is False
    assert (final / "v").read_text() == "1" and [p.name for p in tmp_path.iterdir()] == ["store"]


# A full disk, for real: a child interpreter whose files may not grow past a few KiB (RLIMIT_FSIZE:
# writes past it fail with EFBIG; Python ignores SIGXFSZ), and a small tmpfs (ENOSPC) where the
# test may mount one.

FILE_LIMIT = 4096

CHILD = """
import json, os
from pathlib import Path
from simfl.atomic import append_line, publish_directory, write_json, write_table, write_text

here = Path.cwd()

def report(write):
    try:
        write()
    except Exception as error:
        seen = {"type": type(error).__name__, "line": str(error)}
        seen |= {"exit_code": getattr(error, "exit_code", None), "errno": error.errno}
        print(json.dumps(seen | {"oserror": isinstance(error, OSError)}))
    else:
        print("null")
"""


def _with_file_limit(root: Path, code: str) -> list[dict | None]:
    """What each ``report(...)`` in ``code`` saw, run in ``root`` under :data:`FILE_LIMIT`."""
    from cli_process import child_env

    limit = (FILE_LIMIT, FILE_LIMIT)
    done = subprocess.run(
        [sys.executable, "-c", CHILD + textwrap.dedent(code)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, limit),
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _efbig(path: Path) -> str:
    remedy = "raise the file-size limit (ulimit -f)"
    return f"cannot write {path}: [Errno 27] File too large (EFBIG); {remedy}"


def test_a_file_too_large_is_one_line_and_the_old_file_stays(tmp_path: Path) -> None:
    write_json(tmp_path / "summary.json", {"status": "running"})
    seen = _with_file_limit(
        tmp_path,
        """
        report(lambda: write_json(here / "summary.json", {"pad": "x" * 10_000}))
        import pandas as pd  # pyarrow reports the errno in an error of its own
        report(lambda: write_table(here / "metrics", pd.DataFrame({"x": range(5_000)})))
        """,
    )
    root = tmp_path.resolve()
    assert seen[0] == {
        "type": "ResultsWriteError",
        "line": _efbig(root / "summary.json"),
        "exit_code": 2,
        "errno": errno.EFBIG,
        "oserror": True,
    }
    assert seen[1]["line"] == _efbig(root / "metrics.parquet")
    assert json.loads((tmp_path / "summary.json").read_text()) == {"status": "running"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no temporaries


def test_an_append_that_does_not_fit_leaves_only_complete_lines(tmp_path: Path) -> None:
    lines = tmp_path / "metrics.jsonl"
    lines.write_text("".join(f'{{"round":{k:04d}}}' + " " * 85 + "\n" for k in range(40)))
    before = lines.read_bytes()  # 4000 bytes: the next line is cut short at 4096, then fails
    seen = _with_file_limit(
        tmp_path,
        """
        report(lambda: append_line(here / "metrics.jsonl", '{"round":40}' + " " * 200))
        report(lambda: append_line(here / "metrics.jsonl", '{"round":40}'))
        """,
    )
    assert seen[0]["line"] == _efbig(tmp_path.resolve() / "metrics.jsonl")
    assert seen[1] is None  # a line that fits is appended after the failed one
    assert lines.read_bytes() == before + b'{"round":40}\n'


def test_a_directory_that_does_not_fit_is_not_published(tmp_path: Path) -> None:
    publish_directory(
        tmp_path / "round-000001", lambda tmp: (tmp / "checkpoint.pt").write_text("1")
    )
    seen = _with_file_limit(
        tmp_path,
        """
        big = "x" * 10_000
        fill = lambda tmp: write_text(tmp / "client-state" / "0.pt", big)
        report(lambda: publish_directory(here / "round-000002", fill))
        raw = lambda tmp: (tmp / "checkpoint.pt").write_text(big)  # an error naming no file
        report(lambda: publish_directory(here / "round-000003", raw))
        """,
    )
    root = tmp_path.resolve()
    assert seen[0]["line"] == _efbig(root / "round-000002" / "client-state" / "0.pt")
    assert seen[1]["line"] == _efbig(root / "round-000003")
    assert [p.name for p in tmp_path.iterdir()] == ["round-000001"]  # no staging left
    assert (tmp_path / "round-000001" / "checkpoint.pt").read_text() == "1"


def test_an_error_while_a_full_disk_is_handled_is_not_taken_for_one(tmp_path: Path) -> None:
    """Marking a run failed after its disk filled up writes files: a bug there is a bug."""

    def broken(path: Path) -> None:
        raise ValueError("a bug")

    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        with pytest.raises(ValueError, match="a bug"):
            write_atomically(tmp_path / "summary.json", broken)
        with pytest.raises(ValueError, match="a bug"):
            publish_directory(tmp_path / "round-000001", broken)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real ENOSPC (mounting needs root; skipped elsewhere)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"no tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_is_one_line_and_leaves_complete_files(small_disk: Path) -> None:
    write_json(small_disk / "summary.json", {"status": "running"})
    append_line(small_disk / "metrics.jsonl", '{"round":0}')
    with pytest.raises(ResultsWriteError) as raised:
        write_text(small_disk / "summary.json", "x" * 100_000)
    assert str(raised.value) == (
        f"cannot write {small_disk / 'summary.json'}: [Errno 28] No space left on device "
        "(ENOSPC); free space"
    )
    _fill(small_disk / "filler")  # what is left is the room in metrics.jsonl's last page
    with pytest.raises(ResultsWriteError, match="metrics.jsonl: .Errno 28"):
        append_line(small_disk / "metrics.jsonl", "y" * 8_000)
    assert read_complete_lines(small_disk / "metrics.jsonl") == ['{"round":0}']
    assert (small_disk / "metrics.jsonl").read_text() == '{"round":0}\n'
    assert json.loads((small_disk / "summary.json").read_text()) == {"status": "running"}
    assert sorted(p.name for p in small_disk.iterdir()) == [
        "filler",
        "metrics.jsonl",
        "summary.json",
    ]


def _fill(path: Path) -> None:
    """Write ``path`` until the disk is full."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    try:
        while True:
            os.write(descriptor, b"f" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(descriptor)
