"""The documentation site: references generated from the code and committed, every scenario key
described, and the whole site building with ``mkdocs build --strict`` (a broken link, a page
missing from the navigation or a stale reference fails here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from simfl.config import Scenario
from simfl.manual.__main__ import main as manual_main
from simfl.manual.registries import extension_points
from simfl.manual.scenario_keys import render, undescribed

ROOT = Path(__file__).resolve().parents[1]


def test_every_scenario_key_has_a_description():
    assert undescribed(Scenario) == []


def test_committed_references_match_the_code(capsys):
    code = manual_main(["--check"])
    assert code == 0, capsys.readouterr().out


def test_scenario_reference_lists_every_variant_key_once_with_its_variants():
    text = render(Scenario)
    rows = [line for line in text.splitlines() if line.startswith("| `strategy.proximal_mu`")]
    assert len(rows) == 1 and rows[0].endswith("*Only for `fedprox`.* |")
    chooser = next(line for line in text.splitlines() if line.startswith("| `strategy.name`"))
    assert "`fedavg`" in chooser and "`scaffold`" in chooser and "`pfedme`" in chooser


def test_extension_points_come_from_the_engine_table():
    from simfl.engine import extensions

    points = [point for point, _ in extension_points(extensions.__doc__ or "")]
    assert points[:2] == ["``client_mods``", "``adapt_model``"]
    assert "``summary``" in points


def test_site_builds_strictly(tmp_path):
    """The generators, then ``mkdocs build --strict`` on a copy of the docs."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("benchmarks"))
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    assert manual_main(["--docs", str(tmp_path / "docs")]) == 0
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", "site"],
        cwd=tmp_path,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "scenario.html").exists()
    assert (tmp_path / "site" / "benchmarks" / "index.html").exists()
