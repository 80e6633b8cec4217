r"""A :class:`StyledTable` as a booktabs LaTeX table to paste into a paper.

``\toprule`` / ``\midrule`` / ``\bottomrule`` rules and no vertical lines (booktabs' rules), the
best group in ``\textbf``, groups not significantly worse ``\underline``d, text escaped for
LaTeX, and the legend in the caption. Needs ``\usepackage{booktabs}`` in the preamble.
"""

from __future__ import annotations

from simfl.report.tables import Cell, StyledTable

SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "–": "--",
    "≈": r"$\approx$",
    "α": r"$\alpha$",
    "ε": r"$\varepsilon$",
    "σ": r"$\sigma$",
}


def escape(text: str) -> str:
    """Text safe inside a LaTeX tabular cell."""
    return "".join(SPECIALS.get(char, char) for char in text)


def _cell(cell: Cell) -> str:
    text = escape(cell.text)
    if cell.mark == "best":
        return rf"\textbf{{{text}}}"
    return rf"\underline{{{text}}}" if cell.mark == "tie" else text


def booktabs(
    table: StyledTable, label: str, caption: str | None = None, alpha: float = 0.05
) -> str:
    """A complete ``table`` environment; labels left-aligned, figures right-aligned."""
    columns = "l" * table.index_columns + "r" * (len(table.header) - table.index_columns)
    legend = (
        r"Best per setting in bold; \underline{underlined}: not significantly worse than the "
        r"best (paired $t$-test over seeds, Holm-corrected, "
        rf"$\alpha = {alpha:g}$)."
    )
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{escape(caption or table.title)}. {legend}}}",
        rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{{columns}}}",
        r"\toprule",
        " & ".join(escape(name) for name in table.header) + r" \\",
        r"\midrule",
        *(" & ".join(_cell(cell) for cell in row) + r" \\" for row in table.rows),
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
