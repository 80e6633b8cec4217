"""The one error a partitioner raises for a request it cannot meet.

It names the offending parameter in the partitioner's own terms (``min_size``, ``k``,
``num_partitions``, ``metadata`` for a missing metadata column, ``label.alpha`` inside a
composition), so a caller can map it onto its own configuration keys (simfl prefixes
``partition.``) without parsing the text. A ``ValueError``, so code that catches bad values
generically still catches it.
"""

from __future__ import annotations


class PartitionError(ValueError):
    """``param`` is what to change; ``message`` says what is wrong and what is allowed."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message

    def __reduce__(self) -> tuple[type[PartitionError], tuple[str, str]]:
        """Pickle (e.g. across processes) by the two fields, not the formatted text."""
        return (PartitionError, (self.param, self.message))

    def within(self, section: str) -> PartitionError:
        """The same error, its parameter addressed inside ``section`` (``label`` -> ``label.k``)."""
        return PartitionError(f"{section}.{self.param}", self.message)
