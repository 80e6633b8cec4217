import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from simfl.atomic import read_complete_lines, write_atomically, write_text
from simfl.config import load_scenario
from simfl.engine.records import ClientFailure, RoundRecord
from simfl.tracking.callbacks import History, RunInfo
from simfl.tracking.results import METRICS_LINES, ResultsWriter, new_run_dir

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"


def _info(tmp_path):
    scenario = load_scenario(QUICKSTART, [f"tracking.results_dir={tmp_path}"])
    run_dir = new_run_dir(scenario)
    clients = pd.DataFrame({"client": [0, 1], "size": [5, 7]})
    return RunInfo(scenario, run_dir.name, run_dir, "now", clients, {"size_cv": 0.2}, ["a", "b"])


def test_run_dir_name_and_uniqueness(tmp_path):
    info = _info(tmp_path)
    assert info.run_dir.name.startswith("quickstart-") and info.run_dir.name.endswith(
        info.scenario.short_hash()
    )
    info.run_dir.mkdir()
    assert new_run_dir(info.scenario) != info.run_dir


def test_writer_marks_running_then_failed_and_keeps_completed_rounds(tmp_path):
    info = _info(tmp_path)
    writer = ResultsWriter(info.run_dir)
    writer.on_run_start(info)
    assert json.loads((info.run_dir / "summary.json").read_text())["status"] == "running"
    writer.on_round_end(RoundRecord(round=0, metrics={"central_accuracy": 0.1}))
    writer.on_round_end(RoundRecord(round=1, clients_failed=1, metrics={"central_accuracy": 0.2}))
    writer.on_client_failures([ClientFailure(1, "train", 3, 99, "Traceback ...")])
    writer.on_run_failed({"status": "failed", "error": "boom"})
    metrics = pd.read_parquet(info.run_dir / "metrics.parquet")
    assert list(metrics["round"]) == [0, 1] and metrics["clients_failed"].iloc[1] == 1
    assert pd.read_csv(info.run_dir / "metrics.csv").shape == metrics.shape
    assert json.loads((info.run_dir / "failures.json").read_text())[0]["partition_id"] == 3
    assert json.loads((info.run_dir / "summary.json").read_text())["status"] == "failed"
    assert "quickstart" in (info.run_dir / "scenario.toml").read_text()
    assert not list(info.run_dir.glob(".*tmp"))


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "x.txt"
    write_text(target, "old")

    def broken(path):
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(target, broken)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_metrics_are_appended_per_round_never_rewritten(tmp_path):
    info = _info(tmp_path)
    writer = ResultsWriter(info.run_dir)
    writer.on_run_start(info)
    lines = info.run_dir / "metrics.jsonl"
    writer.on_round_end(RoundRecord(round=0, metrics={"central_accuracy": 0.1}))
    first, inode = lines.read_bytes(), lines.stat().st_ino
    writer.on_round_end(
        RoundRecord(round=1, metrics={"central_accuracy": 1 / 3, "x": float("nan")})
    )
    assert lines.read_bytes().startswith(first) and lines.stat().st_ino == inode  # appended
    assert not (info.run_dir / "metrics.parquet").exists()  # the table is built at the end
    with lines.open("a") as handle:  # a crash in the middle of the next append
        handle.write('{"round": 2, "central_acc')
    rows = read_metrics_lines(info.run_dir)
    assert list(rows["round"]) == [0, 1] and rows["central_accuracy"].iloc[1] == 1 / 3  # exact
    writer.on_run_end({"status": "completed"})
    table = pd.read_parquet(info.run_dir / "metrics.parquet")
    assert list(table["round"]) == [0, 1] and table["x"].isna().iloc[1]


def test_a_resumed_writer_keeps_exactly_the_checkpointed_rounds(tmp_path):
    info = _info(tmp_path)
    writer = ResultsWriter(info.run_dir)
    writer.on_run_start(info)
    for server_round in range(4):  # rounds 0-3 ran; the checkpoint holds rounds 0-2
        writer.on_round_end(RoundRecord(round=server_round, metrics={"m": float(server_round)}))
    previous = History(rounds=[RoundRecord(round=r, metrics={"m": float(r)}) for r in range(3)])
    resumed = ResultsWriter(info.run_dir, previous)
    resumed.on_run_start(replace(info, resumed_after=2))
    resumed.on_round_end(RoundRecord(round=3, metrics={"m": 3.0}))
    assert list(read_metrics_lines(info.run_dir)["round"]) == [0, 1, 2, 3]
    resumed.on_run_end({"status": "completed"})
    assert list(pd.read_parquet(info.run_dir / "metrics.parquet")["m"]) == [0.0, 1.0, 2.0, 3.0]


def test_the_wandb_partition_table_is_capped_in_cells_and_spans_the_population() -> None:
    """A 10^5-client partition table of 46 columns: W&B gets 1,086 evenly spaced clients
    (first and last included), not a row cap's 10,000 rows (seconds to log); a small table
    whole."""
    import numpy as np

    from simfl.tracking.wandb_logger import MAX_TABLE_CELLS, evenly_spaced_rows

    wide = pd.DataFrame(np.zeros((100_000, 46)), columns=[f"c{i}" for i in range(46)])
    wide["c0"] = np.arange(100_000)
    sample = evenly_spaced_rows(wide, MAX_TABLE_CELLS)
    assert len(sample) == MAX_TABLE_CELLS // 46 == 1086
    clients = sample["c0"].to_numpy()
    assert clients[0] == 0 and clients[-1] == 99_999 and (np.diff(clients) > 0).all()
    assert set(np.diff(clients)) <= {92, 93}  # evenly spaced
    small = wide.head(100)
    assert evenly_spaced_rows(small, MAX_TABLE_CELLS) is small


def read_metrics_lines(run_dir: Path) -> pd.DataFrame:
    """``metrics.jsonl`` as a table: a running or interrupted run's rounds so far."""
    path = Path(run_dir) / METRICS_LINES
    rows = [json.loads(line) for line in read_complete_lines(path)] if path.exists() else []
    return pd.DataFrame(rows)
