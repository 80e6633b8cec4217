"""SecAgg+ overhead per round: scenarios/privacy-secagg.toml with and without SecAgg+.

Both variants run side by side in one invocation, as the two cells of one ``simfl sweep`` over
``privacy.secagg.enabled = [false, true]`` (one process, one Ray runtime, the same actors, the
same seeds and cohorts), so machine load and start-up affect both alike. Everything else in the
scenario is kept, central DP clipped on the client included; without SecAgg+ there are no
protocol dropouts, so the SecAgg+ side may aggregate fewer clients (reported).

Figures per trained round, the first ``--warmup`` trained rounds of each side left out (round
1 of the first cell pays the actors' first calls and the workers' data loading, which would
be charged to whichever side runs first; round 0, the initial evaluation, is left out too):
wall time of the round, of its training phase (where SecAgg+'s four stages run), bytes down
and up, and the ratios SecAgg+ / plain. The load average is printed before and after: on a
shared machine the seconds mean little without it.

Usage: ``simfl bench secagg [--rounds R] [--warmup W] [--cache-dir DIR] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import pandas as pd
from simfl_process import REPO, add_cache_and_json_arguments, run_overrides, set_flags, simfl

SCENARIO = REPO / "scenarios" / "privacy-secagg.toml"
COLUMNS = ("round_seconds", "train_seconds", "bytes_down", "bytes_up", "clients_succeeded")


def per_round(cell: Path, warmup: int) -> dict[str, float]:
    metrics = pd.read_parquet(cell / "metrics.parquet")
    trained = metrics[metrics["round"] > warmup]
    out = {name: float(trained[name].mean()) for name in COLUMNS}
    for name in ("secagg_seconds", "secagg_clients_dropped"):
        if name in trained:
            out[name] = float(trained[name].mean())
    out["rounds"] = len(trained)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    add_cache_and_json_arguments(parser)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="simfl-bench-secagg-"))
    sets = [
        *run_overrides(args.rounds, args.cache_dir),
        f"tracking.results_dir={work / 'results'}",
    ]
    flags = set_flags(sets)
    sweep = work / "secagg-overhead.toml"
    sweep.write_text(SCENARIO.read_text() + '\n[sweep]\n"privacy.secagg.enabled" = [false, true]\n')
    simfl("data", "prepare", str(SCENARIO), *flags, cwd=work)  # neither side pays data prep
    load_before = os.getloadavg()
    simfl("sweep", str(sweep), *flags, cwd=work)
    load_after = os.getloadavg()

    (sweep_dir,) = (work / "results" / "sweeps").iterdir()
    index = pd.read_parquet(sweep_dir / "index.parquet")
    sides = {}
    for cell in index.to_dict("records"):
        name = "secagg" if cell["privacy.secagg.enabled"] else "plain"
        sides[name] = per_round(sweep_dir / "cells" / cell["cell_id"], args.warmup)
    plain, secure = sides["plain"], sides["secagg"]
    figures = {
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "plain": plain,
        "secagg": secure,
        "ratio": {name: secure[name] / plain[name] for name in COLUMNS[:4]},
        "sweep_dir": str(sweep_dir),
    }
    print(f"load average before {load_before}, after {load_after}")
    print(f"rounds {args.warmup + 1}-{args.rounds} of each side (round 1..{args.warmup}: warm-up)")
    print(f"{'per trained round':22s} {'plain':>12s} {'secagg+':>12s} {'ratio':>7s}")
    for name in COLUMNS:
        ratio = secure[name] / plain[name] if plain[name] else float("nan")
        print(f"{name:22s} {plain[name]:12.2f} {secure[name]:12.2f} {ratio:7.2f}")
    for name in ("secagg_seconds", "secagg_clients_dropped"):
        print(f"{name:22s} {'':12s} {secure.get(name, float('nan')):12.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
