"""``simfl report``: Markdown and one self-contained HTML page (plots inlined) per sweep."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from simfl.atomic import write_atomically, write_table, write_text
from simfl.report.load import SweepResults, load_sweeps
from simfl.report.plots import figures
from simfl.report.tables import comparison, formatted, markdown


@dataclass(frozen=True)
class Report:
    directory: Path
    table: pd.DataFrame
    markdown: str
    figures: list[str]
    missing: list[str]


def _missing_note(results: SweepResults) -> str:
    missing = results.missing
    if missing.empty:
        return f"All {len(results.cells)} cells are complete."
    listed = ", ".join(f"{row.label} ({row.status})" for row in missing.itertuples())
    return f"{len(missing)} of {len(results.cells)} cells are missing: {listed}."


def _html(
    title: str, note: str, pretty: pd.DataFrame, table: pd.DataFrame, images: dict[str, bytes]
) -> str:
    rows = table.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="grid")
    comparison_html = pretty.to_html(index=False, border=0, classes="grid")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table.grid{border-collapse:collapse;font-size:13px}"
        "table.grid td,table.grid th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "img{max-width:100%;margin:1em 0}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>",
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(note)}</p>",
        "<h2>Comparison (mean ± std over seeds)</h2>",
        comparison_html,
        "<h2>Plots</h2>",
    ]
    for name, png in images.items():
        encoded = base64.b64encode(png).decode()
        parts.append(
            f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{encoded}'>"
        )
        parts.append(f"<figcaption>{html.escape(name)}</figcaption></figure>")
    parts += ["<h2>All figures (raw)</h2>", rows, "</body></html>"]
    return "\n".join(parts)


def build_report(directories: list[Path], out_dir: Path | None, target: float) -> Report:
    results = load_sweeps(directories)
    out_dir = out_dir or Path(directories[0]) / "report"
    table = comparison(results, target)
    note = _missing_note(results)
    title = f"simfl sweep {', '.join(results.sweep_ids)}"
    pretty = formatted(table, results.group_axes, target) if not table.empty else pd.DataFrame()
    table_md = markdown(pretty) if not table.empty else "(no completed cells)"
    images = figures(results, table) if not table.empty else {}
    write_text(out_dir / "report.md", f"# {title}\n\n{note}\n\n{table_md}\n")
    if not table.empty:
        write_table(out_dir / "comparison", table)
    for name, png in images.items():
        write_atomically(out_dir / name, lambda tmp, data=png: tmp.write_bytes(data))
    write_text(out_dir / "report.html", _html(title, note, pretty, table, images))
    return Report(out_dir, table, table_md, list(images), list(results.missing["cell_id"]))
