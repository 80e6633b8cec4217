"""Swapping a name in a Flower module for the length of a block, and back.

Every engine patch in this package is such a swap: Flower's modules look the patched names up
at call time (each one a named, contract-tested assumption of the module that patches it), so
the replacement is seen only by runs inside the block and the original is always restored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def replaced(patches: list[tuple[Any, str, Any]]) -> Iterator[None]:
    """Each ``(module, name, replacement)`` in place for the block; the originals after it."""
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, replacement in patches:
        setattr(module, name, replacement)
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)
