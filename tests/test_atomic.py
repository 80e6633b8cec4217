"""simfl.atomic: content, permissions, failures and publish races, on the real file system."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from simfl.atomic import publish_directory, write_atomically, write_json, write_table, write_text


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
