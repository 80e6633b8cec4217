"""``simfl report`` on a sweep written to disk with fixed figures: every output and every rule.

The sweep directory is laid out exactly as ``simfl sweep`` writes it (``sweep.json``, a cell
directory with ``DONE``, ``scenario.toml``, ``summary.json``, ``metrics.parquet`` and
``clients.parquet``), with final accuracies chosen so that the verdicts are known.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simfl.report.build import ReportOptions, build_report
from simfl.report.statistics import seeds_needed
from simfl.report.tables import interval_text
from simfl.report.wandb_report import report_for, spec

SWEEP_ID = "label-shift-0123abcd"
STRATEGIES = ["fedavg", "fedprox", "fedadam"]
ALPHAS = [0.1, 1.0]
FINAL = {  # final central accuracy per (strategy, alpha) over seeds 0, 1, 2
    ("fedavg", 0.1): [0.50, 0.52, 0.55],
    ("fedprox", 0.1): [0.49, 0.515, 0.545],  # within noise of fedavg: a tie
    ("fedadam", 0.1): [0.30, 0.33, 0.29],
    ("fedavg", 1.0): [0.70, 0.72, 0.71],
    ("fedprox", 1.0): [0.69, 0.70, 0.715],
    ("fedadam", 1.0): [0.80, 0.82, 0.81],
}
ROUNDS = 4


def _metrics(final: float, seed: int, epsilon: bool) -> pd.DataFrame:
    rounds = np.arange(ROUNDS + 1)
    frame = pd.DataFrame(
        {
            "round": rounds,
            "train_loss": 2.0 - rounds * 0.3,
            "central_accuracy": final * rounds / ROUNDS,
            "fed_accuracy_worst10": final * rounds / ROUNDS - 0.2,
            "bytes_down": np.where(rounds > 0, 1_000_000, 0),
            "bytes_up": np.where(rounds > 0, 500_000, 0),
            "round_seconds": np.where(rounds > 0, 2.0 + seed, 0.0),
        }
    )
    if epsilon:
        frame["epsilon"] = rounds * (1.0 + final)  # a column a feature adds (privacy)
    return frame


def _clients(final: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "round": ROUNDS,
            "partition_id": range(4),
            "eval_accuracy": [final - 0.1, final, final + 0.05, final + 0.05],
            "num-examples": 10.0,
        }
    )


def write_sweep(
    root: Path, seeds: list[int], sweep_id: str = SWEEP_ID, epsilon: bool = False
) -> Path:
    """A completed sweep directory as ``simfl sweep`` leaves it."""
    directory = root / sweep_id
    cells = []
    for strategy in STRATEGIES:
        for alpha in ALPHAS:
            for seed in seeds:
                cell_id = f"{strategy}-{alpha}-{seed}"
                values = {"strategy.name": strategy, "partition.alpha": alpha, "seeds": seed}
                label = ",".join(f"{k}={v}" for k, v in values.items())
                cells.append({"cell_id": cell_id, "label": label, "values": values})
                cell = directory / "cells" / cell_id
                cell.mkdir(parents=True)
                final = FINAL[(strategy, alpha)][seed]
                _metrics(final, seed, epsilon).to_parquet(cell / "metrics.parquet")
                _clients(final).to_parquet(cell / "clients.parquet")
                (cell / "scenario.toml").write_text(
                    f'[scenario]\nname = "label-shift"\nseed = {seed}\n'
                    f'[strategy]\nname = "{strategy}"\n[partition]\nalpha = {alpha}\n'
                    '[tracking]\nwandb_project = "simfl-bench"\nwandb_entity = "speech-lab"\n'
                )
                (cell / "summary.json").write_text(json.dumps({"status": "completed"}))
                (cell / "DONE").write_text("{}")
    axes = {"strategy.name": STRATEGIES, "partition.alpha": ALPHAS, "seeds": seeds}
    manifest = {"sweep_id": sweep_id, "axes": axes, "cells": cells}
    (directory / "sweep.json").write_text(json.dumps(manifest))
    return directory


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return write_sweep(tmp_path, [0, 1, 2])


def _logit_t(values: list[float]) -> tuple[float, float]:
    """An accuracy's 95% interval as the report takes it: Student t on the logit scale."""
    logits = np.log(np.array(values) / (1 - np.array(values)))
    low, high = stats.t.interval(0.95, len(logits) - 1, loc=logits.mean(), scale=stats.sem(logits))
    return 1 / (1 + np.exp(-low)), 1 / (1 + np.exp(-high))


def _t_text(values: list[float]) -> str:
    return interval_text(np.mean(values), *_logit_t(values), 3)


def test_cli_writes_winner_map_rank_table_and_every_format(sweep, tmp_path, cli):
    done = cli(
        "report", str(sweep), "--x", "partition.alpha", "--y", "central_accuracy", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    out = sweep / "report"
    winner = pd.read_csv(out / "winner_map.csv")
    assert list(winner.columns) == ["strategy", "alpha = 0.1", "alpha = 1.0"]
    assert list(winner["strategy"]) == STRATEGIES  # the sweep's own order
    for strategy in STRATEGIES:
        row = winner[winner["strategy"] == strategy].iloc[0]
        for alpha in ALPHAS:
            assert row[f"alpha = {alpha}"] == _t_text(FINAL[(strategy, alpha)])
    md = (out / "report.md").read_text()
    assert f"| fedavg | **{_t_text(FINAL[('fedavg', 0.1)])}** |" in md  # best in bold
    assert f"| fedprox | {_t_text(FINAL[('fedprox', 0.1)])} ≈ |" in md  # a tie
    assert f"| fedadam | {_t_text(FINAL[('fedadam', 0.1)])} |" in md  # significantly worse
    ranks = pd.read_csv(out / "ranks.csv")
    # alpha 0.1: fedavg 1, fedprox 2, fedadam 3; alpha 1.0: fedadam 1, fedavg 2, fedprox 3
    assert ranks.set_index("strategy")["mean rank"].to_dict() == {
        "fedavg": 1.5,
        "fedadam": 2.0,
        "fedprox": 2.5,
    }
    for name in (
        "report.html",
        "comparison.csv",
        "comparison.parquet",
        "statistics.parquet",
        "cells.csv",
        "winner_map.tex",
        "ranks.tex",
        "comparison_table.tex",
        "winner_map_central_accuracy.png",
        "winner_map_central_accuracy.svg",
        "central_accuracy_vs_round.svg",
        "central_accuracy_vs_alpha.png",
        "clients_eval_accuracy.png",
        "clients_eval_accuracy.svg",
    ):
        assert (out / name).is_file(), name


def test_statistics_table_equals_scipy(sweep):
    report = build_report([sweep], None, ReportOptions(x="partition.alpha"))
    table = report.comparison.set_index(["partition.alpha", "strategy.name", "outcome"])
    row = table.loc[(0.1, "fedprox", "central_accuracy")]
    data = np.array(FINAL[("fedprox", 0.1)])
    low, high = _logit_t(list(data))
    assert abs(row["ci_low"] - low) < 1e-9 and abs(row["ci_high"] - high) < 1e-9
    assert row["interval"] == "t on the logit scale"
    differences = np.array(FINAL[("fedavg", 0.1)]) - data
    assert row["paired_std"] == pytest.approx(differences.std(ddof=1), abs=1e-12)
    assert row["seeds_needed"] == seeds_needed(row["paired_std"], 0.02)
    (line,) = [note for note in report.notes if note.startswith("Seeds needed for ±0.02 (95%)")]
    rows = report.comparison[report.comparison["outcome"] == "central_accuracy"]
    assert f"at most {rows['seeds_needed'].max():g}" in line
    assert abs(row["std"] - data.std(ddof=1)) < 1e-12
    p = stats.ttest_rel(FINAL[("fedavg", 0.1)], data).pvalue
    assert abs(row["p_vs_best"] - p) < 1e-9
    assert bool(row["tie"]) and not bool(row["best"])
    wide = pd.read_csv(sweep / "report" / "comparison.csv")
    assert len(wide) == 6 and (wide["seeds"] == 3).all()
    assert "central_accuracy_ci_low" in wide and "mb_total_mean" in wide


def test_fewer_than_three_seeds_says_no_significance(tmp_path):
    directory = write_sweep(tmp_path, [0, 1])
    report = build_report([directory], None, ReportOptions())
    assert any("no significance can be claimed" in note for note in report.notes)
    assert not report.comparison["tie"].any()


def test_any_metric_column_and_derived_outcomes_work_as_y(tmp_path):
    directory = write_sweep(tmp_path, [0, 1, 2], epsilon=True)
    report = build_report([directory], tmp_path / "eps", ReportOptions(y="epsilon"))
    rows = report.comparison[report.comparison["outcome"] == "epsilon"]
    best = rows[rows["best"]].set_index("partition.alpha")["strategy.name"].to_dict()
    assert best == {0.1: "fedadam", 1.0: "fedprox"}  # lowest ε wins: lower is better
    epsilon_final = rows.set_index(["partition.alpha", "strategy.name"])["mean"]
    assert epsilon_final[(1.0, "fedadam")] == pytest.approx(ROUNDS * (1 + 0.81))
    timed = build_report(
        [directory], tmp_path / "t", ReportOptions(y="time_to_target_s", target=0.5)
    )
    rows = timed.comparison[timed.comparison["outcome"] == "time_to_target_s"]
    seconds = rows.set_index(["partition.alpha", "strategy.name"])
    # fedavg at alpha 1.0 reaches 0.5 at round 3 (0.70 * 3 / 4 = 0.525): 3 rounds of 2+seed s
    assert seconds.loc[(1.0, "fedavg"), "mean"] == pytest.approx(np.mean([6.0, 9.0, 12.0]))
    summed = build_report([directory], tmp_path / "s", ReportOptions(y="sum:bytes_up"))
    assert (summed.comparison.query("outcome == 'sum:bytes_up'")["mean"] == 2_000_000).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--x", "partition.beta"],
            "--x 'partition.beta': not a swept key; allowed: strategy.name, partition.alpha",
        ),
        (["--y", "accuracy"], "--y 'accuracy': not a metric of these runs; allowed: train_loss"),
        (["--y", "median:central_accuracy"], "--y 'median:central_accuracy': unknown aggregate"),
        (
            ["--by", "partition.alpha", "--x", "partition.alpha"],
            "--by 'partition.alpha': must differ from --x",
        ),
        (["--ci", "normal"], "--ci 'normal': allowed: t, bootstrap"),
    ],
)
def test_bad_flags_exit_2_with_one_line(sweep, tmp_path, args, message, cli):
    done = cli("report", str(sweep), *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_bad_directory_exits_2(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    for path in ("missing", "empty"):
        done = cli("report", path, cwd=tmp_path)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
        assert path in done.stderr and "sweep" in done.stderr


def test_several_sweeps_and_run_directories_merge_by_cell_values(tmp_path):
    whole = build_report([write_sweep(tmp_path / "a", [0, 1, 2])], tmp_path / "r1", ReportOptions())
    first = write_sweep(tmp_path / "b", [0, 1], sweep_id="seeds-01")
    third = write_sweep(tmp_path / "c", [2], sweep_id="seed-2")
    merged = build_report([first, third], tmp_path / "r2", ReportOptions())
    columns = ["partition.alpha", "strategy.name", "outcome", "seeds", "mean", "ci_low", "tie"]
    pd.testing.assert_frame_equal(whole.comparison[columns], merged.comparison[columns])
    # plain run directories (a cell directory is one): two runs differing in the strategy
    runs = [tmp_path / "c" / "seed-2" / "cells" / f"{s}-1.0-2" for s in ("fedavg", "fedadam")]
    single = build_report(runs, tmp_path / "r3", ReportOptions())
    assert single.design.by == "strategy.name"
    means = single.comparison.query("outcome == 'central_accuracy'").set_index("strategy.name")
    assert means["mean"].to_dict() == {"fedavg": 0.71, "fedadam": 0.81}


def _tabular(tex: str) -> tuple[str, list[str]]:
    match = re.search(r"\\begin\{tabular\}\{([lrc]+)\}\n(.*?)\n\\end\{tabular\}", tex, re.S)
    assert match, tex
    return match.group(1), match.group(2).split("\n")


def test_latex_table_is_valid_booktabs(sweep, tmp_path):
    build_report([sweep], None, ReportOptions())
    for name in ("winner_map", "ranks", "comparison_table"):
        tex = (sweep / "report" / f"{name}.tex").read_text()
        columns, lines = _tabular(tex)
        assert lines[0] == r"\toprule" and lines[2] == r"\midrule" and lines[-1] == r"\bottomrule"
        assert not any("|" in line or r"\hline" in line for line in lines)  # booktabs: no rules
        body = [line for line in lines if line.endswith(r"\\")]
        assert len(body) == len(lines) - 3
        for line in body:
            cells = re.split(r"(?<!\\)&", line.removesuffix(r"\\"))
            assert len(cells) == len(columns), line
            assert line.count("{") == line.count("}")
            assert not re.search(r"(?<!\\)[_%#]", line), line  # escaped
        assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 1
    winner = (sweep / "report" / "winner_map.tex").read_text()
    assert rf"\textbf{{{_t_text(FINAL[('fedavg', 0.1)])}}}" in winner
    assert rf"\underline{{{_t_text(FINAL[('fedprox', 0.1)])}}}" in winner
    engine = shutil.which("pdflatex") or shutil.which("tectonic")
    if engine is None:
        pytest.skip("no TeX engine installed: structure checked, not compiled")
    document = tmp_path / "paper.tex"
    document.write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
        + (sweep / "report" / "comparison_table.tex").read_text()
        + winner
        + "\\end{document}\n"
    )
    compiled = subprocess.run(
        [engine, "-interaction=nonstopmode", "-halt-on-error", document.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compiled.returncode == 0, compiled.stdout[-2000:]


def test_html_is_self_contained_and_boxes_wide_tables(sweep):
    build_report([sweep], None, ReportOptions())
    html = (sweep / "report" / "report.html").read_text()
    assert "max-width:1240px" in html and "overflow-x:auto" in html
    assert html.count("<div class='box'><table") == 4  # winner map, ranks, comparison, cells
    assert not re.search(r"(src|href)=['\"]https?:", html)  # nothing fetched from elsewhere
    assert html.count("data:image/png;base64,") == 4


def test_wandb_report_spec_names_the_group_and_groups_by_strategy(sweep, tmp_path, cli):
    done = cli("report", str(sweep), "--wandb-report", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    spec_file = json.loads((sweep / "wandb_report.json").read_text())
    assert spec_file["project"] == "simfl-bench" and spec_file["entity"] == "speech-lab"
    grids = [b for b in spec_file["blocks"] if b["type"] == "PanelGrid"]
    assert len(grids) == 2  # one per alpha
    for grid, alpha in zip(grids, ALPHAS, strict=True):
        (runset,) = grid["runsets"]
        assert runset["filters"] == (
            f'Metric("Group") == \'{SWEEP_ID}\' and Config("partition.alpha") == {alpha}'
        )
        assert runset["groupby"] == ["config.strategy.name"]
        accuracy = [p for p in grid["panels"] if p["y"] == ["central_accuracy"]]
        assert accuracy and accuracy[0]["type"] == "LinePlot" and accuracy[0]["x"] == "Step"
        assert accuracy[0]["groupby"] == {"name": "strategy.name"}
        assert accuracy[0]["groupby_aggfunc"] == "mean"
    tables = [b for b in spec_file["blocks"] if b["type"] == "MarkdownBlock"]
    assert "Winner map" in tables[0]["text"] and "**" in tables[0]["text"]
    rebuilt = spec(report_for(build_report([sweep], tmp_path / "again", ReportOptions())))
    assert rebuilt["blocks"][:-1] == spec_file["blocks"][:-1]  # same spec on every build


MEASURE = """<script>
window.addEventListener('load', () => {
  let widest = 0, outside = 0;
  for (const element of document.body.querySelectorAll('*')) {
    const width = element.getBoundingClientRect().width;
    widest = Math.max(widest, width);
    if (!element.closest('.box')) outside = Math.max(outside, width);
  }
  const out = document.createElement('pre');
  out.id = 'measure';
  out.textContent = JSON.stringify({widest: widest, outside: outside,
    page: document.documentElement.scrollWidth, window: window.innerWidth});
  document.body.appendChild(out);
});
</script>"""


def test_html_fits_a_1280_px_window_in_headless_chromium(sweep, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium: apt-get install chromium")
    build_report([sweep], None, ReportOptions())
    page = (sweep / "report" / "report.html").read_text()
    measured = tmp_path / "measured.html"
    measured.write_text(page.replace("</body></html>", MEASURE + "</body></html>"))
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,900",
            "--virtual-time-budget=5000",
            "--dump-dom",
            measured.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    widths = json.loads(re.search(r'<pre id="measure">([^<]*)</pre>', dom).group(1))
    assert widths["window"] == 1280
    assert widths["page"] <= 1280  # no horizontal scrolling of the page itself
    assert widths["outside"] <= 1280  # only tables inside their scrolling boxes may be wider
    assert widths["widest"] <= 1280  # and at this size even the tables fit


def test_a_single_run_directory_is_one_group(sweep, tmp_path):
    run = sweep / "cells" / "fedavg-1.0-2"
    report = build_report([run], tmp_path / "single", ReportOptions())
    assert [t.title.split(":")[0] for t in report.tables] == [
        "Winner map",
        "Comparison (mean [95% CI] over seeds)",
    ]
    central = report.comparison.query("outcome == 'central_accuracy'")
    assert central["mean"].tolist() == [0.71] and central["seeds"].tolist() == [1]
    assert any("no significance can be claimed" in note for note in report.notes)
