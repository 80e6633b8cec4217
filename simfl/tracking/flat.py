"""Nested records (a summary, a resolved scenario) as flat key/value pairs for trackers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def leaves(data: dict[str, Any], separator: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every non-table value of ``data`` (an empty table counts as one) under its joined key:
    ``final/central_accuracy`` with ``"/"``, ``train.lr`` with ``"."``."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from leaves(value, separator, f"{name}{separator}")
        else:
            yield name, value
