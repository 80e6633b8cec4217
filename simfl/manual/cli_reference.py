"""Every ``simfl`` command and option, from the Typer app itself (the same objects ``--help``
prints), so the reference cannot drift from the command line."""

from __future__ import annotations

from pathlib import Path

import click
import typer
from typer.core import TyperArgument

#: Defaults under the source tree are shown relative to it, so the page is the same anywhere.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def _rest(text: str | None) -> str:
    paragraphs = (text or "").strip().split("\n\n")[1:]
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _option_row(param: click.Parameter) -> str:
    if isinstance(param, click.Argument):
        name = f"`{param.human_readable_name}`"
        kind = "argument" + (" (required)" if param.required else "")
        help_text = (param.help if isinstance(param, TyperArgument) else "") or ""
    else:
        assert isinstance(param, click.Option)
        names = param.opts + param.secondary_opts
        name = " / ".join(f"`{n}`" for n in names)
        kind = "flag" if param.is_flag else param.type.name.lower()
        help_text = param.help or ""
    default = param.default
    if isinstance(default, str | Path) and Path(default).is_absolute():
        default = Path(default).relative_to(SOURCE_ROOT)
    shown = "" if default in (None, False, (), []) or callable(default) else f"`{default}`"
    described = " ".join(help_text.split()).replace("|", "\\|")
    return f"| {name} | {kind} | {shown} | {described} |"


def _command_section(path: str, command: click.Command) -> list[str]:
    lines = [f"## `{path}`", "", _first_paragraph(command.help)]
    rest = _rest(command.help)
    if rest:
        lines += ["", rest]
    params = [p for p in command.params if p.name != "help"]
    if params:
        lines += [
            "",
            "| option | type | default | description |",
            "| --- | --- | --- | --- |",
        ]
        lines += [_option_row(p) for p in params]
    return lines + [""]


def _walk(path: str, command: click.Command) -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            found += _walk(f"{path} {name}", command.commands[name])
    return found


def render(app: typer.Typer) -> str:
    """The CLI reference page, in Markdown."""
    root = typer.main.get_command(app)
    lines = [
        "# Command line",
        "",
        "Generated from the Typer app by `python -m simfl.manual`; do not edit.",
        "`simfl COMMAND --help` prints the same.",
        "",
    ]
    for path, command in _walk("simfl", root):
        if path == "simfl":
            lines += [_first_paragraph(command.help), ""]
            continue
        lines += _command_section(path, command)
    return "\n".join(lines)
