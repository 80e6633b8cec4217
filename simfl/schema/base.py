"""What scenario sections share; imported by the strategy schemas without an import cycle."""

from __future__ import annotations

from typing import Any

#: Marks a field added after scenarios were first hashed: at its default it is left out of the
#: scenario's identity, so existing scenarios, sweeps and cell ids keep their hashes. Use as
#: ``Field(default=..., json_schema_extra=HASH_NEUTRAL)``; a whole new section's class may set
#: ``model_config = ConfigDict(..., json_schema_extra=HASH_NEUTRAL)`` instead.
HASH_NEUTRAL: dict[str, Any] = {"hash_neutral": True}
