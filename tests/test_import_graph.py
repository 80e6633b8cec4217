"""The module-level import graph of ``simfl`` and ``partitioners``: acyclic and layered.

Built from the source with ``ast`` (imports inside functions and under ``TYPE_CHECKING`` are
deferred and do not count), checked with the standard library's ``graphlib``. Also: the
partitioners package imports nothing from simfl, and loading a scenario's schema pulls in no
part of the training stack.
"""

from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("simfl", "partitioners")
HEAVY = ("torch", "flwr", "ray", "datasets", "transformers", "pandas", "scipy", "matplotlib")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name.startswith("test_"):
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module, name: str, is_package: bool) -> list[str]:
    """Absolute names imported when the module runs (function bodies are deferred)."""
    targets: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                targets.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets.extend(f"{base}.{alias.name}" for alias in node.names)
                targets.append(base)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.ClassDef):
                visit(node.body)

    visit(tree.body)
    return targets


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        imported = _module_level_imports(tree, name, path.name == "__init__.py")
        graph[name] = {target for target in imported if target in modules and target != name}
    return graph


def test_no_module_level_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 60
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


def test_partitioners_import_nothing_from_simfl() -> None:
    graph = import_graph()
    offenders = {
        module: sorted(t for t in targets if t.startswith("simfl"))
        for module, targets in graph.items()
        if module.startswith("partitioners")
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_loading_a_scenario_imports_no_training_stack() -> None:
    script = (
        "import json, sys\n"
        "from simfl.config import load_scenario\n"
        "load_scenario('scenarios/quickstart.toml')\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    ("module", "never"),
    [
        # A Ray actor: torch, Flower and simfl's client code only.
        ("simfl.engine.client_app", ("scipy", "dp_accounting", "matplotlib", "datasets",
                                     "pandas", "transformers", "opacus")),
        # The server of a run without privacy: no accountant (dp-accounting pulls scipy).
        ("simfl.engine.server_app", ("scipy", "dp_accounting", "matplotlib", "datasets",
                                     "transformers", "opacus")),
    ],
)  # fmt: skip
def test_engine_modules_import_only_what_they_need(module: str, never: tuple[str, ...]) -> None:
    script = (
        f"import json, sys\nimport {module}\n"
        f"print(json.dumps(sorted(m for m in {never!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []
