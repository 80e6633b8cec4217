"""Layering rules over every import statement in ``simfl``: who may import what.

Unlike ``test_import_graph.py`` (module-level imports, for cycles), these rules read ALL
import statements: module level, inside functions, under ``TYPE_CHECKING``, relative ones
resolved. Each rule names the modules it applies to and the imports it forbids them; a new
rule is one more :class:`Rule` in :data:`RULES`.

Rule ``engine-knows-no-feature``: no module under ``simfl/engine/`` imports privacy, systems
or a strategy (their packages and their scenario schemas); features plug in through
:mod:`simfl.engine.extensions`.

Rule ``flower-internals-only-in-flower-compat``: no module outside ``simfl/flower_compat/``
imports a non-public Flower module. Flower's public API is ``flwr.app``, ``flwr.clientapp``,
``flwr.clientapp.mod``, ``flwr.serverapp``, ``flwr.serverapp.strategy`` and ``flwr.simulation``
(each: the module itself and the names in its ``__all__``; not its submodules) and ``import
flwr`` itself; everything else is internal.
"""

from __future__ import annotations

import ast
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_FLOWER_MODULES = (
    "flwr.app",
    "flwr.clientapp",
    "flwr.clientapp.mod",
    "flwr.serverapp",
    "flwr.serverapp.strategy",
    "flwr.simulation",
)


def module_name(path: Path) -> str:
    """``simfl/engine/grid.py`` -> ``simfl.engine.grid``; a package's ``__init__`` -> package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_imports(path: Path) -> list[tuple[int, str]]:
    """Every import statement of ``path`` as ``(line, absolute name)``, wherever it stands.

    ``import a.b`` gives ``a.b``; ``from a import b`` gives ``a.b`` (a name or a submodule of
    ``a``: a rule decides which); relative imports are resolved against the module's package.
    """
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return sorted(found)


@functools.cache
def _exported(module: str) -> frozenset[str]:
    return frozenset(getattr(importlib.import_module(module), "__all__", ()))


def is_flower_internal(name: str) -> bool:
    """Whether importing ``name`` (a module, or ``module.attribute``) reaches past Flower's
    public API (see the module docstring)."""
    if name != "flwr" and not name.startswith("flwr."):
        return False
    if name == "flwr" or name in PUBLIC_FLOWER_MODULES:
        return False
    parent, _, attribute = name.rpartition(".")
    return not (parent in PUBLIC_FLOWER_MODULES and attribute in _exported(parent))


@dataclass(frozen=True)
class Rule:
    """Modules for which ``applies`` holds may not import a name for which ``forbids`` does."""

    name: str
    applies: Callable[[str], bool]
    forbids: Callable[[str], bool]
    why: str


#: What the engine must not know: the features and strategies that plug into it.
FEATURE_PACKAGES = (
    "simfl.privacy",
    "simfl.systems",
    "simfl.strategies",
    "simfl.schema.privacy",
    "simfl.schema.systems",
)


def is_feature(name: str) -> bool:
    return any(name == package or name.startswith(f"{package}.") for package in FEATURE_PACKAGES)


RULES = (
    Rule(
        "engine-knows-no-feature",
        applies=lambda module: module.startswith("simfl.engine"),
        forbids=is_feature,
        why="the engine sees features only through simfl.engine.extensions; register the "
        "feature's part in simfl.plugins.FEATURES instead",
    ),
    Rule(
        "flower-internals-only-in-flower-compat",
        applies=lambda module: not module.startswith("simfl.flower_compat"),
        forbids=is_flower_internal,
        why="import it from simfl.flower_compat (add it there, with a named, contract-tested "
        "assumption) instead",
    ),
)


def simfl_modules() -> list[Path]:
    return sorted((ROOT / "simfl").rglob("*.py"))


def violations(rule: Rule) -> list[str]:
    """``path:line -> imported name`` for every import that breaks ``rule``."""
    found = []
    for path in simfl_modules():
        if not rule.applies(module_name(path)):
            continue
        for line, name in all_imports(path):
            if rule.forbids(name):
                found.append(f"{path.relative_to(ROOT)}:{line} -> {name}")
    return found


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_layering_rule(rule: Rule) -> None:
    broken = violations(rule)
    assert not broken, f"rule {rule.name} broken ({rule.why}):\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("name", "internal"),
    [
        ("flwr", False),
        ("flwr.app.Message", False),
        ("flwr.serverapp.strategy", False),
        ("flwr.serverapp.strategy.FedAvg", False),
        ("flwr.clientapp.mod.LocalDpMod", False),
        ("flwr.simulation.run_simulation", False),
        ("numpy.random", False),
        ("flwr.serverapp.strategy.fedopt", True),
        ("flwr.serverapp.strategy.fedopt.FedOpt", True),
        ("flwr.serverapp.strategy.dp_fixed_clipping", True),
        ("flwr.clientapp.mod.centraldp_mods", True),
        ("flwr.app.metadata.Metadata", True),
        ("flwr.common.constant.ErrorCode", True),
        ("flwr.simulation.ray_transport.ray_actor.BasicActorPool", True),
        ("flwr.client.mod.secaggplus_mod", True),
    ],
)
def test_flower_public_api_is_told_apart(name: str, internal: bool) -> None:
    assert is_flower_internal(name) is internal


def test_all_imports_reads_every_import_statement(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "simfl" / "pkg"
    package.mkdir(parents=True)
    source = package / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import flwr.common\n"
        "if TYPE_CHECKING:\n"
        "    from flwr.server import Grid\n"
        "def f():\n"
        "    from .sibling import thing\n"
        "    from .. import other\n"
    )
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert all_imports(source) == [
        (1, "typing.TYPE_CHECKING"),
        (2, "flwr.common"),
        (4, "flwr.server.Grid"),
        (6, "simfl.pkg.sibling.thing"),
        (7, "simfl.other"),
    ]


@pytest.mark.parametrize(
    ("name", "feature"),
    [
        ("simfl.privacy.feature.PrivacyFeature", True),
        ("simfl.systems", True),
        ("simfl.strategies.fedopt.FedOpt", True),
        ("simfl.schema.systems.over_selected", True),
        ("simfl.schema.strategy.StrategyBase", False),
        ("simfl.engine.extensions.Feature", False),
        ("simfl.registry", False),
    ],
)
def test_feature_imports_are_told_apart(name: str, feature: bool) -> None:
    assert is_feature(name) is feature
