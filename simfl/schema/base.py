"""What every scenario section shares: strictness, hash-neutral fields, cross-table rules."""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from simfl.config import Scenario

#: Marks a field added after scenarios were first hashed: at its default it is left out of the
#: scenario's identity, so existing scenarios, sweeps and cell ids keep their hashes. Use as
#: ``Field(default=..., json_schema_extra=HASH_NEUTRAL)``; a whole new section's class may set
#: ``model_config = ConfigDict(..., json_schema_extra=HASH_NEUTRAL)`` instead.
HASH_NEUTRAL: dict[str, Any] = {"hash_neutral": True}


@runtime_checkable
class CrossTableRule(Protocol):
    """A section whose validity depends on other tables of the scenario.

    ``check_scenario`` runs in the schema phase (after every table parsed on its own) and
    raises ``ValueError`` with one line naming the keys involved. It must be pure: no file
    system, no model building, no data; checks that need those run during preparation
    (:mod:`simfl.preparation_checks`).
    """

    def check_scenario(self, scenario: Scenario) -> None: ...


class Section(BaseModel):
    """A scenario table: unknown keys are errors, values never change after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    def check_scenario(self, scenario: Scenario) -> None:
        """No cross-table rule by default (see :class:`CrossTableRule`)."""


def _is_hash_neutral(extra: Any) -> bool:
    return isinstance(extra, dict) and bool(extra.get("hash_neutral"))


def identity_dump(model: BaseModel) -> dict[str, Any]:
    """``model_dump(mode="json")`` without hash-neutral fields that hold their default."""
    dumped = model.model_dump(mode="json")
    out: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        section_neutral = isinstance(value, BaseModel) and _is_hash_neutral(
            value.model_config.get("json_schema_extra")
        )
        at_default = not field.is_required() and value == field.get_default(
            call_default_factory=True
        )
        if at_default and (section_neutral or _is_hash_neutral(field.json_schema_extra)):
            continue
        out[name] = identity_dump(value) if isinstance(value, BaseModel) else dumped[name]
    return out


def model_members(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field can hold (one, or the members of a tagged union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [member for arg in typing.get_args(annotation) for member in model_members(arg)]
