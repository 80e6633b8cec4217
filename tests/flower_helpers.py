"""Real Flower objects for unit tests: an in-memory Grid with registered nodes, task identity.

The contract tests' own helpers (``simfl/flower_compat/conftest.py``), for the tests under
``tests/``: Flower's InMemoryGrid over an in-memory LinkState, so strategies sample real node ids.
"""

from simfl.flower_compat.conftest import RUN_ID, TASK_ID, in_memory_grid_of, task_identity

flower_task = task_identity
in_memory_grid = in_memory_grid_of

__all__ = ["RUN_ID", "TASK_ID", "flower_task", "in_memory_grid"]
