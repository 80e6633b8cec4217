"""``python -m simfl.manual [--check]``: write the generated pages of the documentation site.

The references (``docs/reference/``) are committed, and ``--check`` fails, listing the pages,
where the committed ones differ from what the code gives (a test runs it). The home page
(``docs/index.md``, from the README) and the benchmarks pages (``docs/benchmarks/``, from the
records) are built each time and not committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def references() -> dict[str, str]:
    """Each generated reference page's path under docs/ and its text."""
    from simfl.cli import app
    from simfl.config import Scenario
    from simfl.manual import cli_reference, registries, scenario_keys

    return {
        "reference/scenario.md": scenario_keys.render(Scenario),
        "reference/cli.md": cli_reference.render(app),
        "reference/registries.md": registries.render(),
        "reference/strategies.md": registries.render_fidelity(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    parser.add_argument("--check", action="store_true", help="compare; write nothing")
    args = parser.parse_args(argv)
    pages = references()
    if args.check:
        stale = [p for p, text in pages.items() if _read(args.docs / p) != text]
        for page in stale:
            print(f"{args.docs / page}: differs from the code; run python -m simfl.manual")
        return 1 if stale else 0
    for page, text in pages.items():
        (args.docs / page).parent.mkdir(parents=True, exist_ok=True)
        (args.docs / page).write_text(text)
    from simfl.manual import benchmarks, home

    (args.docs / "index.md").write_text(home.render((ROOT / "README.md").read_text()))
    benchmarks.render(ROOT / "bench", args.docs / "benchmarks")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
