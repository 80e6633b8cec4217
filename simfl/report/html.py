"""One self-contained HTML page (styles and figures inlined) that fits a laptop screen.

The page is at most 1240 px wide; every table sits in a box that scrolls sideways when the
table is wider (a sweep with many settings or outcomes), and figures shrink to the page, so
nothing pushes the page past a 1280-px window.
"""

from __future__ import annotations

import base64
import html

import pandas as pd

from simfl.report.plots import Figure
from simfl.report.tables import TIE_SYMBOL, StyledTable

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;padding:16px;
max-width:1240px;color:#222;line-height:1.4}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em .8em;margin:.6em 0}
.box{max-width:100%;overflow-x:auto;border:1px solid #e3e3e3;border-radius:4px;margin:.6em 0}
table{border-collapse:collapse;font-size:12px;white-space:nowrap}
th,td{padding:4px 7px;border-bottom:1px solid #eee;text-align:right}
th{background:#f5f5f5;white-space:normal;vertical-align:bottom;min-width:4em}
td.label,th.label{text-align:left}
td.best{font-weight:700;background:#e8f5e9}td.tie{background:#f3faf3}
.legend{font-size:12px;color:#555}
figure{margin:1em 0;max-width:100%}figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#555}
"""


def styled_table_html(table: StyledTable) -> str:
    """A :class:`StyledTable` in a scrolling box; best cells bold, ties shaded and marked ≈."""
    head = "".join(
        f"<th class='{'label' if i < table.index_columns else ''}'>{html.escape(name)}</th>"
        for i, name in enumerate(table.header)
    )
    body = []
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row):
            classes = " ".join(
                c for c in ("label" if i < table.index_columns else "", cell.mark) if c
            )
            suffix = f" {TIE_SYMBOL}" if cell.mark == "tie" else ""
            cells.append(f"<td class='{classes}'>{html.escape(cell.text + suffix)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f"<p class='legend'>{html.escape(n)}</p>" for n in table.notes)
    return (
        f"<h2>{html.escape(table.title)}</h2><div class='box'><table><thead><tr>{head}</tr>"
        f"</thead><tbody>{''.join(body)}</tbody></table></div>{notes}"
    )


def frame_html(frame: pd.DataFrame) -> str:
    """A plain data frame (the per-cell figures) in a scrolling box."""
    table = frame.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}", na_rep="–")
    return f"<div class='box'>{table}</div>"


def figure_html(figure: Figure) -> str:
    encoded = base64.b64encode(figure.png).decode()
    name = html.escape(figure.name)
    return (
        f"<figure><img alt='{name}' src='data:image/png;base64,{encoded}'>"
        f"<figcaption>{name} (also {name}.png and {name}.svg beside this page)</figcaption>"
        "</figure>"
    )


def page(
    title: str,
    notes: list[str],
    tables: list[StyledTable],
    figures: list[Figure],
    raw: pd.DataFrame,
) -> str:
    """The whole report: notes, the marked tables, the figures, then every cell's raw figures."""
    legend = (
        f"<p class='legend'>Bold, green: best mean in its setting. {TIE_SYMBOL}, light green: "
        "not significantly worse than the best (paired t-test over shared seeds, Holm-corrected)."
        " Brackets: 95% confidence interval over seeds.</p>"
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *(f"<p class='note'>{html.escape(note)}</p>" for note in notes),
        legend,
        *(styled_table_html(table) for table in tables),
        "<h2>Figures</h2>",
        *(figure_html(figure) for figure in figures),
        "<h2>Every cell (raw figures)</h2>",
        frame_html(raw),
        "</body></html>",
    ]
    return "\n".join(parts)
