"""Every scenario key, from the pydantic schema: type, default, allowed values, description,
and the variants (``strategy.name = "fedprox"``, ...) it belongs to.

Pydantic's JSON schema holds the same facts, but scattered over ``$defs`` and ``oneOf``
branches; this walks the models directly and merges a key that several variants share into
one row, which is what a reader looking for one key wants.
"""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from simfl.registry import tags_of
from simfl.schema.base import model_members


@dataclass
class KeyRow:
    """One scenario key as the reference shows it."""

    key: str
    type: str
    default: str
    allowed: str
    description: str
    variants: list[str] = field(default_factory=list)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "string" if all(isinstance(a, str) for a in args) else "literal"
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        optional = " or none" if type(None) in args else ""
        return " or ".join(dict.fromkeys(names)) + optional
    if origin in (list, tuple, set, frozenset):
        inner = [a for a in args if a is not Ellipsis]
        return f"list of {_type_name(inner[0])}" if inner else "list"
    if origin is dict:
        return f"table of {_type_name(args[1])}" if len(args) == 2 else "table"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "string"
    names = {bool: "bool", int: "integer", float: "float", str: "string", Any: "any"}
    if annotation in names:
        return names[annotation]
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


def _choices(annotation: Any) -> list[str]:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(member.value) for member in annotation]
    if origin in (typing.Union, types.UnionType, typing.Annotated, list, tuple):
        return [c for arg in typing.get_args(annotation) for c in _choices(arg)]
    return []


_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "length ≥"),
    (annotated_types.MaxLen, "max_length", "length ≤"),
)


def _constraints(info: FieldInfo) -> list[str]:
    parts = []
    for item in info.metadata:
        for kind, attribute, symbol in _BOUNDS:
            if isinstance(item, kind):
                parts.append(f"{symbol} {getattr(item, attribute)}")
        pattern = (
            getattr(item, "pattern", None) if type(item).__name__.endswith("Metadata") else None
        )
        if pattern:
            parts.append(f"matches `{pattern}`")
    return parts


def _allowed(info: FieldInfo) -> str:
    choices = [f"`{c}`" for c in dict.fromkeys(_choices(info.annotation))]
    return ", ".join(choices + _constraints(info))


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "(table)"
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "none"
    if value in ({}, [], ()):
        return "empty"
    return f"`{value!r}`" if isinstance(value, str) else f"`{value}`"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def model_rows(model: type[BaseModel], prefix: str) -> list[KeyRow]:
    """The keys of ``model`` under ``prefix``, nested tables recursed into."""
    rows: list[KeyRow] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}.{info.alias or name}"
        members = model_members(info.annotation)
        rows.append(
            KeyRow(
                key,
                _type_name(info.annotation),
                _default(info),
                _allowed(info),
                _one_line(info.description),
            )
        )
        for member in members:
            rows.extend(model_rows(member, key))
    return rows


def _merged(rows_by_variant: dict[str, list[KeyRow]]) -> list[KeyRow]:
    """Rows of several variants, one per key and meaning, naming the variants that have it."""
    merged: dict[tuple[str, ...], KeyRow] = {}
    for variant, rows in rows_by_variant.items():
        for row in rows:
            identity = (row.key, row.type, row.default, row.allowed, row.description)
            merged.setdefault(identity, KeyRow(*identity)).variants.append(variant)
    everyone = list(rows_by_variant)
    for row in merged.values():
        others = [variant for variant in everyone if variant not in row.variants]
        if not others:
            row.variants = []
        elif len(others) < len(row.variants):
            row.variants = ["all but " + ", ".join(others)]
    return sorted(merged.values(), key=lambda row: (row.key, row.variants))


def table_rows(table: str, info: FieldInfo) -> tuple[str, list[KeyRow]]:
    """A top-level table's rows and the tag its variants are chosen by ("" if none)."""
    members = model_members(info.annotation)
    if len(members) <= 1:
        return "", model_rows(members[0], table) if members else [
            KeyRow(
                f"{table}.<key>",
                _type_name(info.annotation),
                _default(info),
                _allowed(info),
                _one_line(info.description),
            )
        ]
    tag = info.discriminator if isinstance(info.discriminator, str) else ""
    by_variant = {"/".join(tags_of(m)) or m.__name__: model_rows(m, table) for m in members}
    rows = [row for row in _merged(by_variant) if row.key != f"{table}.{tag}"]
    chooser = KeyRow(
        f"{table}.{tag}",
        "string",
        "required",
        ", ".join(f"`{name}`" for m in members for name in tags_of(m)),
        f"Which {table} variant this is; the other keys of [{table}] depend on it.",
    )
    return tag, [chooser, *rows]


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or " "


def _row(row: KeyRow) -> str:
    """One key: its name; type, default and allowed values; description and variants."""
    default = "required" if row.default == "required" else f"default {row.default}"
    value = f"{row.type}; {default}"
    if row.allowed:
        value += f"; {row.allowed}"
    description = row.description
    if row.variants:
        names = ", ".join(
            v.replace("all but ", "all but `") + "`" if v.startswith("all but ") else f"`{v}`"
            for v in row.variants
        )
        description += f" *Only for {names}.*"
    cells = (f"`{row.key}`", value, description)
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def render(scenario_model: type[BaseModel]) -> str:
    """The scenario reference page, in Markdown."""
    lines = [
        "# Scenario keys",
        "",
        "Generated from the scenario schema by `python -m simfl.manual`; do not edit.",
        "Every key a scenario file may hold, by table. A key that only some variants have",
        "(`data.dataset`, `partition.kind`, `model.name`, `strategy.name`) says which. Set any",
        "key from the command line with `--set table.key=value`.",
    ]
    for table, info in scenario_model.model_fields.items():
        tag, rows = table_rows(table, info)
        lines += ["", f"## `[{table}]`", "", _one_line(info.description)]
        if tag:
            lines += ["", f"Variants are chosen by `{table}.{tag}`."]
        lines += ["", "| key | value | description |", "| --- | --- | --- |"]
        lines += [_row(row) for row in rows]
    return "\n".join(lines) + "\n"


def undescribed(scenario_model: type[BaseModel]) -> list[str]:
    """Keys without a description (the reference needs one for each)."""
    seen: set[type[BaseModel]] = set()
    missing: list[str] = []

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, info in model.model_fields.items():
            if not _one_line(info.description):
                missing.append(f"{model.__module__}.{model.__name__}.{name}")
            for member in model_members(info.annotation):
                walk(member)

    walk(scenario_model)
    return missing
