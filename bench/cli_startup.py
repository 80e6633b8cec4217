"""``simfl bench cli``: how long the CLI takes to answer, over bare Python with its libraries.

Each command runs as a fresh process (as a user types it), best of ``--repeats``, side by side
in one invocation with ``python -c "import typer, pydantic, rich"`` (the floor any Typer CLI
with pydantic and rich pays). Prints seconds and each command's ratio to that floor.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "scenarios" / "quickstart.toml")
COMMANDS = {
    "floor: import typer, pydantic, rich": ["-c", "import typer, pydantic, rich"],
    "simfl --help": ["-m", "simfl.cli", "--help"],
    "simfl validate quickstart": ["-m", "simfl.cli", "validate", QUICKSTART],
    "simfl list": ["-m", "simfl.cli", "list"],
    "refusal (bad key)": ["-m", "simfl.cli", "validate", QUICKSTART, "--set", "data.nope=1"],
}


def best_of(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    seconds = {name: best_of(command, args.repeats) for name, command in COMMANDS.items()}
    floor = seconds["floor: import typer, pydantic, rich"]
    print(f"{'command':<38} {'seconds':>8} {'÷ floor':>8}")
    for name, value in seconds.items():
        print(f"{name:<38} {value:8.3f} {value / floor:8.2f}")


if __name__ == "__main__":
    main()
