"""Pydantic's validation errors as the one line a user reads: the file, each problem's dotted
key (union tags pydantic puts in locations left out), what is wrong, what is allowed, and a
"did you mean" for a misspelt key."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from simfl import registry
from simfl.schema.base import model_members


def _strip_tags(loc: tuple[Any, ...], raw: Any) -> list[str]:
    """Drop union tags pydantic puts in error locations (``partition.dirichlet.alpha``)."""
    keys: list[str] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and part not in node and isinstance(part, str):
            continue  # a discriminator tag or a missing key, handled by the caller
        keys.append(str(part))
        node = (
            node.get(part)
            if isinstance(node, dict)
            else (node[part] if isinstance(node, list) and isinstance(part, int) else None)
        )
    return keys


def _schema_keys(loc: tuple[Any, ...], root: type[BaseModel]) -> list[str]:
    """The keys that the table holding ``loc[-1]`` allows, for 'did you mean' hints."""
    candidates: list[type[BaseModel]] = [root]
    for part in loc[:-1]:
        by_tag = [m for m in candidates if part in registry.tags_of(m)]
        if by_tag:  # pydantic put the union tag into the location
            candidates = by_tag
            continue
        fields = [m.model_fields[part] for m in candidates if part in m.model_fields]
        if not fields:
            return []
        candidates = model_members(fields[0].annotation)
    if len(candidates) != 1:
        return []
    return list(candidates[0].model_fields)


def describe_validation_error(
    err: ValidationError, raw: dict[str, Any], source: str, root: type[BaseModel]
) -> str:
    """One line: file, then per problem the dotted key, what is wrong and what is allowed
    (``root`` is the model validated, whose tables the 'did you mean' hints come from)."""
    prefix = f"{source}: "
    parts = [line.removeprefix(prefix) for line in _problem_lines(err, raw, source, root)]
    return prefix + "; ".join(parts)


def _problem_lines(
    err: ValidationError, raw: dict[str, Any], source: str, root: type[BaseModel]
) -> list[str]:
    """``<source>: <problem>`` for each problem pydantic found."""
    lines = []
    problems = err.errors()
    missing = [p["loc"][0] for p in problems if p["type"] == "missing" and len(p["loc"]) == 1]
    if len(missing) > 1:  # an empty file, say: one line naming every missing table
        tables = ", ".join(f"[{name}]" for name in missing)
        lines.append(f"{source}: missing required sections {tables}")
        problems = [p for p in problems if not (p["type"] == "missing" and len(p["loc"]) == 1)]
    for problem in problems:
        loc = tuple(problem["loc"])
        kind = problem["type"]
        if kind == "extra_forbidden":
            key = ".".join(_strip_tags(loc[:-1], raw) + [str(loc[-1])])
            allowed = _schema_keys(loc, root)
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
            lines.append(
                f"{source}: unknown key '{key}'{did_you_mean}; allowed keys: {', '.join(allowed)}"
            )
            continue
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            tag = problem["ctx"]["discriminator"].strip("'")
            key = ".".join([*_strip_tags(loc, raw), tag])
            if kind == "union_tag_not_found":
                lines.append(f"{source}: missing required key '{key}'")
                continue
            got, allowed = problem["ctx"]["tag"], problem["ctx"]["expected_tags"]
            lines.append(f"{source}: key '{key}': unknown value {got!r}; allowed: {allowed}")
            continue
        if kind == "missing":
            key = ".".join(_strip_tags(loc[:-1], raw) + [str(loc[-1])])
            lines.append(f"{source}: missing required key '{key}'")
            continue
        key = ".".join(_strip_tags(loc, raw)) or "(top level)"
        got = problem.get("input")
        shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
        message = problem["msg"].replace("Input tag", "value").replace("Value error, ", "")
        lines.append(f"{source}: key '{key}': {message}{shown}")
    return lines
