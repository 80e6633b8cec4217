"""Partitions on real (tiny, synthesized) data: feature-shift stores, `simfl partition`, bad input,
and one composed scenario run end to end through Flower/Ray."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_scenario import tiny_text

from partitioners.feature_shift import client_condition, conditions_table
from simfl.config import load_scenario
from simfl.data.feature_store import FeatureStore
from simfl.data.prepare import prepare_data
from simfl.federation import build_federation
from simfl.seeding import derive_seed

COMPOSE = """[partition]
kind = "compose"

[partition.label]
alpha = 1.0
min_size = 4

[partition.quantity]
kind = "lognormal"
sigma = 0.5
min_size = 4

[partition.acoustic]
severity = 0.6
effects = ["noise", "band", "gain", "speed", "reverb"]
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_cache) -> Path:
    root = tmp_path_factory.mktemp("partitions")
    text = tiny_text(root / "results", tiny_cache)
    start, end = text.index("[partition]"), text.index("[model]")
    (root / "tiny.toml").write_text(text)
    bare = [line for line in text.splitlines() if not line.startswith(("alpha", "min_size"))]
    (root / "bare.toml").write_text("\n".join(bare))  # [partition] with its kind only
    (root / "compose.toml").write_text(text[:start] + COMPOSE + "\n" + text[end:])
    return root


def _federation(workspace: Path, *overrides: str):
    scenario = load_scenario(workspace / "bare.toml", list(overrides))
    cache = Path(scenario.tracking.cache_dir)
    data = prepare_data(scenario.data, cache)
    return data, build_federation(scenario, data, cache)


def drawn_conditions(scenario) -> pd.DataFrame:
    """Each client's recording condition as feature_shift draws it for ``scenario`` (its
    acoustic part, under the partition seed), as the clients table names the columns."""
    acoustic = getattr(scenario.partition, "acoustic", scenario.partition)  # compose's part
    seed = derive_seed(scenario.scenario.seed, "partition")
    drawn = [client_condition(acoustic, seed, c) for c in range(scenario.data.num_clients)]
    return conditions_table(drawn).add_prefix("cond:")


def test_acoustic_severity_zero_uses_the_clean_store_and_severity_conditions_it(workspace):
    kind = 'partition.kind="acoustic"'
    data, clean = _federation(workspace, kind, "partition.severity=0.0")
    assert clean.train_store == data.train.store_dir  # bit-identical: the very same features
    assert clean.clients["cond:snr_db"].isna().all()
    _, shifted = _federation(workspace, kind, "partition.severity=0.8")
    assert shifted.train_store != data.train.store_dir
    before = FeatureStore.open(data.train.store_dir).read(data.train.rows)
    after = FeatureStore.open(shifted.train_store).read(data.train.rows)
    assert before.shape == after.shape and not np.allclose(before, after)
    assert shifted.scores["feature_shift_score"] > 2 * clean.scores["feature_shift_score"]
    conditions = shifted.clients.filter(like="cond:")  # each client's own seeded channel
    drawn = drawn_conditions(
        load_scenario(workspace / "bare.toml", [kind, "partition.severity=0.8"])
    )
    pd.testing.assert_frame_equal(conditions, drawn)
    _, again = _federation(workspace, kind, "partition.severity=0.8")  # cached, same numbers
    pd.testing.assert_frame_equal(shifted.clients, again.clients)


def test_conditioned_batches_at_neutral_conditions_equal_the_clean_scaling():
    import datasets

    from partitioners.feature_shift import Condition
    from simfl.data.conditions import _conditioned_batches

    audio = np.random.default_rng(0).integers(-3000, 3000, size=(6, 1600)).astype(np.int16)
    split = datasets.Dataset.from_dict({"audio": audio.tolist()})
    owner = np.array([0, 1, -1, 0, 1, 1])
    (batch,) = _conditioned_batches(split, owner, [Condition(), Condition()], 0, 16_000)
    import torch

    from simfl.data.logmel import to_float_audio

    assert np.array_equal(batch, to_float_audio(torch.from_numpy(audio)).numpy())


def test_partition_command_prints_statistics_and_draws_the_figure(workspace, cli):
    figure = workspace / "figure.png"
    done = cli("partition", "compose.toml", "--plot", str(figure), cwd=workspace)
    assert done.returncode == 0, done.stdout + done.stderr
    for text in ("compose split", "recording condition", "label_js_distance_mean", "size_gini"):
        assert text in done.stdout
    assert figure.stat().st_size > 20_000
    assert not (workspace / "results").exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["partition.alpha=0"], "key 'partition.alpha': Input should be greater than 0"),
        (['partition.kind="pathological"', "partition.k=13"], "key 'partition.k'"),
        (['partition.kind="acoustic"', "partition.severity=1.5"], "key 'partition.severity'"),
        (['partition.kind="shuffle"'], "key 'partition.kind': unknown value 'shuffle'"),
        (["partition.beta=2"], "unknown key 'partition.beta'"),
        (["partition.min_size=40"], "key 'partition.min_size'"),
        (['partition.kind="iid"', "data.num_clients=500"], "key 'data.num_clients'"),
        (['partition.kind="speaker"'], "key 'data.num_clients'"),
    ],
)
def test_bad_partitions_exit_2_with_one_line_and_write_nothing(workspace, overrides, expected, cli):
    base = "bare.toml" if overrides[0].startswith("partition.kind") else "tiny.toml"
    args = [item for o in overrides for item in ("--set", o)]
    done = cli("run", base, *args, cwd=workspace)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr
    assert lines[0].startswith(f"error: {base}: "), lines[0]  # data checks name the file too
    assert not (workspace / "results").exists()


@pytest.mark.ray
def test_composed_scenario_runs_end_to_end_with_partition_statistics_and_plot(
    workspace, cli, ray_runtime
):
    done = cli("run", "compose.toml", cwd=workspace)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = sorted((workspace / "results").iterdir())
    clients = pd.read_csv(run_dir / "partition.csv")
    scenario = load_scenario(workspace / "compose.toml")
    train = prepare_data(scenario.data, Path(scenario.tracking.cache_dir)).train
    assert len(clients) == 4 and clients["size"].sum() == len(train.rows)  # each clip placed
    assert clients["size"].min() >= 4
    for column in ("label_js", "effective_labels", "num_speakers", "feature_distance"):
        assert column in clients
    pd.testing.assert_frame_equal(clients.filter(like="cond:"), drawn_conditions(scenario))
    assert clients["cond:rt60_s"].notna().any()
    # The split's scores summarise the per-client statistics (Gini as the mean absolute
    # difference of sizes over twice their mean).
    scores = json.loads((run_dir / "partition_summary.json").read_text())
    assert scores["label_js_distance_mean"] == pytest.approx(clients["label_js"].mean())
    assert scores["label_hellinger_mean"] == pytest.approx(clients["label_hellinger"].mean())
    assert scores["feature_shift_score"] == pytest.approx(clients["feature_distance"].mean())
    sizes = clients["size"].to_numpy(dtype=float)
    assert scores["size_cv"] == pytest.approx(sizes.std() / sizes.mean())
    gaps = np.abs(sizes[:, None] - sizes[None, :]).mean()
    assert scores["size_gini"] == pytest.approx(gaps / (2 * sizes.mean()))
    assert (run_dir / "partition.png").stat().st_size > 20_000
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["partition"]["feature_shift_score"] == scores["feature_shift_score"]
    logged = b"".join(p.read_bytes() for p in (run_dir / "wandb").rglob("*.wandb"))
    assert b"partition/clients" in logged and b"partition/figure" in logged


def test_the_partition_figure_follows_the_plotting_code_not_the_cache(tmp_path):
    """A split described by an older plotting code (its figure cached as partition.png) gets
    a figure drawn by this checkout's code, named by that code's digest, drawn once."""
    import hashlib

    import partitioners.plots
    from partitioners.test_plots import _accent_table
    from simfl.federation import partition_figure

    (tmp_path / "partition.png").write_bytes(b"an older drawing")
    figure = partition_figure(tmp_path, _accent_table(), {})
    digest = hashlib.sha256(Path(partitioners.plots.__file__).read_bytes()).hexdigest()[:12]
    assert figure == tmp_path / f"partition-{digest}.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = figure.stat().st_mtime_ns
    assert partition_figure(tmp_path, _accent_table(), {}) == figure
    assert figure.stat().st_mtime_ns == drawn  # reused, not drawn again
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["partition.png", figure.name])
