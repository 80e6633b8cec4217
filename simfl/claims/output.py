"""The verdict table of a ``simfl claims`` run as CSV, Markdown and one HTML page.

pandas writes the CSV and the Markdown; the page reuses the report's style and raw-table
helper (:mod:`simfl.report.html`). What this adds is the wording: the effect as a signed
difference with its interval, the Holm-corrected p-value and the verdict, with the seeds an
inconclusive claim would need.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

from simfl.atomic import write_table, write_text
from simfl.claims.verdict import INCONCLUSIVE, Verdict
from simfl.report.html import STYLE, frame_html

#: Statements and sources wrap, so the verdict stays in view on a laptop screen.
WRAP = "td.wrap{white-space:normal;min-width:6em;max-width:28em}"
VERDICT_COLOURS = {"reproduced": "#e8f5e9", "contradicted": "#fdecea", "inconclusive": "#fff8e1"}


def method_note(seeds: int, alpha: float, confidence: float) -> str:
    return (
        f"Each claim is a paired experiment: its arms differ only in the factor and share "
        f"{seeds} seeds (one seed, one client split). Effect: mean over seeds of the contrast "
        "(better arm minus worse arm, or the weighted terms), signed so that positive is the "
        f"claimed direction; {confidence:.0%} Student-t interval over seeds; two-sided t-test "
        f"of the contrasts against 0 (paired), Holm-corrected across the claims, α = {alpha:g}. "
        "Reproduced or contradicted only when significant after Holm; otherwise inconclusive, "
        "with the seeds whose interval at α over the number of claims (Holm's strictest step) "
        "would exclude 0 at the observed effect and paired spread."
    )


def table(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([verdict.row() for verdict in verdicts])


def _text(verdict: Verdict) -> tuple[str, str]:
    """The effect with its interval, and the verdict (with seeds needed when inconclusive)."""
    effect = (
        f"{verdict.effect:+.3g} [{verdict.ci_low:+.3g}, {verdict.ci_high:+.3g}]"
        if not math.isnan(verdict.ci_low)
        else f"{verdict.effect:+.3g}"
    )
    said = verdict.verdict
    if said == INCONCLUSIVE and not math.isnan(verdict.seeds_needed):
        said += f" (about {verdict.seeds_needed:g} seeds needed)"
    return effect, said


def write(out_dir: Path, verdicts: list[Verdict], notes: list[str], title: str) -> None:
    """``claims.csv``/``.parquet``, ``claims.md`` and ``claims.html`` in ``out_dir``."""
    frame = table(verdicts)
    write_table(out_dir / "claims", frame)
    rows = []
    for verdict in verdicts:
        effect, said = _text(verdict)
        p = "-" if math.isnan(verdict.p_holm) else f"{verdict.p_holm:.3g}"
        rows.append(
            f"| {verdict.claim.id} | {verdict.claim.statement} | {verdict.claim.source} | "
            f"{verdict.claim.outcome} | {verdict.seeds} | {effect} | {p} | {said} |"
        )
    header = (
        "| claim | statement | source | outcome | seeds | effect [95% CI] | p (Holm) | verdict |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    body = "\n\n".join(notes)
    write_text(out_dir / "claims.md", f"# {title}\n\n{body}\n\n{header}\n" + "\n".join(rows) + "\n")
    write_text(out_dir / "claims.html", _page(title, notes, verdicts, frame))


def _page(title: str, notes: list[str], verdicts: list[Verdict], frame: pd.DataFrame) -> str:
    head = "".join(
        f"<th class='label'>{name}</th>"
        for name in ("claim", "verdict", "effect [95% CI]", "p (Holm)", "seeds", "outcome",
                     "statement", "source")
    )  # fmt: skip
    rows = []
    for verdict in verdicts:
        effect, said = _text(verdict)
        colour = VERDICT_COLOURS.get(verdict.verdict, "#f5f5f5")
        p = "-" if math.isnan(verdict.p_holm) else f"{verdict.p_holm:.3g}"
        first = f"<td class='label'>{html.escape(verdict.claim.id)}</td>"
        said_cell = f"<td class='label' style='background:{colour}'>{html.escape(said)}</td>"
        cells = (effect, p, str(verdict.seeds), verdict.claim.outcome, verdict.claim.statement,
                 verdict.claim.source)  # fmt: skip
        rest = "".join(f"<td class='label wrap'>{html.escape(cell)}</td>" for cell in cells)
        rows.append(f"<tr>{first}{said_cell}{rest}</tr>")
    return "\n".join(
        [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>{html.escape(title)}</title><style>{STYLE}{WRAP}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            *(f"<p class='note'>{html.escape(note)}</p>" for note in notes),
            f"<div class='box'><table><tr>{head}</tr>{''.join(rows)}</table></div>",
            "<h2>Every figure (claims.csv)</h2>",
            frame_html(frame),
            "</body></html>",
        ]
    )
