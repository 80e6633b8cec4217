"""The registry tables (datasets, partitioners, models, strategies, features, trackers), the
extension points and the strategy fidelity table, rendered from the objects the run uses."""

from __future__ import annotations

import re

from simfl import plugins, registry
from simfl.strategies import fidelity


def _escape(text: str) -> str:
    """One table cell: one line, pipes escaped, reST roles and literals as Markdown code."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")
    return " ".join(text.split()).replace("|", "\\|")


def _entries_table(table: dict[str, registry.Entry], strategies: bool) -> list[str]:
    header = "| name | what it is | schema | implementation |"
    rule = "| --- | --- | --- | --- |"
    if strategies:
        header, rule = header + " federation loop |", rule + " --- |"
    lines = [header, rule]
    for entry in table.values():
        cells = [
            f"`{entry.name}`",
            _escape(entry.summary),
            f"`{entry.config.__module__}.{entry.config.__name__}`",
            f"`{entry.implementation}`",
        ]
        if strategies:
            cells.append(f"`{entry.loop.rsplit(':', 1)[1]}`")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _plugins_table(table: dict[str, plugins.Plugin]) -> list[str]:
    lines = ["| name | what it adds | implementation |", "| --- | --- | --- |"]
    for name, plugin in table.items():
        lines.append(f"| `{name}` | {_escape(plugin.summary)} | `{plugin.implementation}` |")
    return lines


def extension_points(module_doc: str) -> list[tuple[str, str]]:
    """The (point, what a feature returns) rows of the table in a module docstring written as
    an reStructuredText simple table (the engine's :mod:`simfl.engine.extensions`)."""
    rules = [i for i, line in enumerate(module_doc.splitlines()) if re.fullmatch(r"=+ +=+", line)]
    rule = module_doc.splitlines()[rules[0]]
    width = rule.index("=", rule.index(" "))  # where the second column starts
    lines = module_doc.splitlines()[rules[1] + 1 : rules[2]]
    rows: list[tuple[str, str]] = []
    for line in lines:
        point, text = line[:width].strip(), line[width:].strip()
        if point:
            rows.append((point, text))
        else:
            rows[-1] = (rows[-1][0], f"{rows[-1][1]} {text}")
    return rows


def render() -> str:
    """The registries page, in Markdown."""
    from simfl.engine import extensions

    lines = [
        "# Registries and extension points",
        "",
        "Generated from `simfl.registry`, `simfl.plugins` and `simfl.engine.extensions` by",
        "`python -m simfl.manual`; do not edit. A scenario names a registry entry by its name",
        "(`data.dataset`, `partition.kind`, `model.name`, `strategy.name`); features and",
        "trackers apply themselves when the scenario turns them on.",
    ]
    for title, table in registry.TABLES.items():
        lines += ["", f"## {title.capitalize()}", ""]
        lines += _entries_table(table, strategies=title == "strategies")
    lines += ["", "## Features", "", "Composed in this order (`simfl.plugins.FEATURES`).", ""]
    lines += _plugins_table(plugins.FEATURES)
    lines += [
        "",
        "## Trackers",
        "",
        "`simfl.plugins.TRACKERS`, in the order they receive records.",
        "",
    ]
    lines += _plugins_table(plugins.TRACKERS)
    lines += [
        "",
        "## Extension points",
        "",
        "What a `Feature` (`simfl.engine.extensions.Feature`) may add to a run:",
        "",
        "| point | what a feature returns |",
        "| --- | --- |",
    ]
    for point, text in extension_points(extensions.__doc__ or ""):
        lines.append(f"| {_escape(point)} | {_escape(text)} |")
    return "\n".join(lines) + "\n"


def render_fidelity() -> str:
    """The strategy fidelity page: each strategy's rule as run against its paper."""
    return "\n".join(
        [
            "# Strategy fidelity",
            "",
            "Generated from `simfl.strategies.fidelity` by `python -m simfl.manual`; do not",
            "edit. `simfl list --details` prints the same notes.",
            "",
            fidelity.COMMON,
            "",
            fidelity.markdown_table(),
            "",
        ]
    )
