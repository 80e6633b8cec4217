"""The Flower version every assumption of this package was read against."""

from __future__ import annotations

import flwr


def test_flower_version_is_the_one_checked() -> None:
    assert flwr.__version__.startswith("1.42."), (
        f"simfl.flower_compat was written against Flower 1.42; found {flwr.__version__}: "
        "re-read every assumption listed in simfl/flower_compat/__init__.py"
    )
