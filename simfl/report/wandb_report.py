"""A W&B Report of a sweep, built with ``wandb-workspaces``: saved online, a spec file offline.

wandb-workspaces gives the report objects (runsets, panel grids, line plots, Markdown). What
simfl adds is the layout of a sweep: one panel grid per setting (``partition.alpha=0.1``) whose
run set is the sweep's W&B group filtered to that setting, line plots of the main metrics per
round grouped by the competitor (``strategy.name``, mean with a standard-error band), and the
comparison and rank tables as Markdown. Converting runsets to W&B's internal model needs the
API, so offline the report is written as its interface-level spec (``wandb_report.json``)
beside the sweep; ``simfl report DIR --wandb-report --wandb online`` rebuilds and saves it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simfl.report.comparison import Design

if TYPE_CHECKING:
    from simfl.report.build import Report as SimflReport

MAIN_METRICS = ("central_accuracy", "fed_accuracy_worst10", "train_loss", "central_loss")
MAX_GRIDS = 8  # more settings than this: one grid over the whole sweep instead


@dataclass(frozen=True)
class ReportTarget:
    """Where the runs live: W&B project and entity, and the groups (sweep ids) to show."""

    project: str
    entity: str
    groups: list[str]


def _filters(groups: list[str], setting: dict[str, Any]):
    from wandb_workspaces import expr

    group = expr.Metric("Group")
    filters = [group == groups[0] if len(groups) == 1 else group.isin(groups)]
    for key, value in setting.items():
        filters.append(expr.Config(key) == value)
    return filters


def _line_plots(metrics: list[str], competitor: str | None) -> list:
    import wandb_workspaces.reports.v2 as wr

    grouping = {"groupby": wr.Config(competitor)} if competitor else {}
    return [
        wr.LinePlot(
            title=f"{metric} vs round" + (f" by {competitor}" if competitor else ""),
            x="Step",
            y=[metric],
            groupby_aggfunc="mean",
            groupby_rangefunc="stderr",
            layout=wr.Layout(x=(i % 3) * 8, y=(i // 3) * 6, w=8, h=6),
            **grouping,
        )
        for i, metric in enumerate(metrics)
    ]


def build_report(
    target: ReportTarget,
    design: Design,
    settings: list[dict[str, Any]],
    metrics: list[str],
    tables_markdown: str,
    title: str,
):
    """The report object: one grid per setting (or one for all), then the comparison tables."""
    import wandb_workspaces.reports.v2 as wr

    per_setting = settings if 0 < len(settings) <= MAX_GRIDS else [{}]
    blocks: list = [
        wr.P(
            f"Runs of W&B group(s) {', '.join(target.groups)}, grouped by "
            f"{design.by or 'run'}: mean per round with a standard-error band over seeds."
        )
    ]
    for setting in per_setting:
        name = ", ".join(f"{k}={v}" for k, v in setting.items()) or "all settings"
        runset = wr.Runset(
            entity=target.entity,
            project=target.project,
            name=name,
            filters=_filters(target.groups, setting),
            groupby=[f"config.{design.by}"] if design.by else [],
        )
        blocks += [
            wr.H2(name),
            wr.PanelGrid(runsets=[runset], panels=_line_plots(metrics, design.by)),
        ]
    blocks += [wr.H2("Comparison"), wr.MarkdownBlock(tables_markdown)]
    return wr.Report(
        project=target.project,
        entity=target.entity,
        title=title[:128],
        description="simfl sweep report: which strategy wins under which heterogeneity",
        blocks=blocks,
        width="fluid",
    )


def spec(report) -> dict[str, Any]:
    """The report as JSON: every block and panel named by its type, its fields as given."""
    from pydantic import TypeAdapter

    def typed(item: Any) -> dict[str, Any]:
        data = TypeAdapter(type(item)).dump_python(item, mode="json")
        data = {k: v for k, v in data.items() if not k.startswith("_")}
        if "panels" in data:
            data["panels"] = [typed(panel) for panel in item.panels]
        if "runsets" in data:
            data["runsets"] = [
                {k: v for k, v in r.items() if not k.startswith("_")} for r in data["runsets"]
            ]
        return {"type": type(item).__name__, **data}

    return {
        "title": report.title,
        "project": report.project,
        "entity": report.entity,
        "description": report.description,
        "blocks": [typed(block) for block in report.blocks],
    }


def write_spec(report, path: Path) -> Path:
    from simfl.atomic import write_text

    write_text(path, json.dumps(spec(report), indent=1) + "\n")
    return path


def publish(report) -> str:
    """Save the report to W&B (credentials as W&B finds them) and return its URL."""
    os.environ.setdefault("WANDB_SILENT", "true")
    if not report.entity:  # none in the scenario: the logged-in user's default entity
        import wandb

        report.entity = wandb.Api().default_entity
        for block in report.blocks:
            for runset in getattr(block, "runsets", []):
                runset.entity = runset.entity or report.entity
    report.save()
    return report.url


def target_of(cells: pd.DataFrame) -> ReportTarget:
    """Project and entity from a done cell's resolved scenario; the groups of every cell."""
    from simfl.report.load import _read_scenario, scenario_value

    done = cells[cells["status"] == "done"]
    scenario = _read_scenario(Path((done if len(done) else cells)["directory"].iloc[0]))
    project = scenario_value(scenario, "tracking.wandb_project") or "simfl"
    entity = scenario_value(scenario, "tracking.wandb_entity") or ""
    return ReportTarget(project, entity, sorted(cells["group"].dropna().unique().tolist()))


def report_for(report: SimflReport):
    """The W&B report of a built simfl report: its groups, settings, metrics and tables."""
    design = report.design
    cells = report.results.cells
    settings = (
        cells[design.settings].drop_duplicates().sort_values(design.settings).to_dict("records")
        if design.settings
        else []
    )
    rounds = report.results.rounds
    metrics = [m for m in dict.fromkeys([report.options.y, *MAIN_METRICS]) if m in rounds]
    return build_report(target_of(cells), design, settings, metrics, report.markdown, report.title)
