"""``simfl bench scale``: populations of virtual clients, side by side in one invocation.

For each ``--clients`` value: the engine's cold start (Ray, actors, the first central
evaluation before round 1), start-up per 1,000 clients, seconds per round (rounds 2 onwards)
and the peak resident memory of the whole process tree (each phase in a fresh process); and
the same rounds through the plain single-process loop with ``--plain-threads`` torch threads
(the work a 1-core loop would do).
Clients own ``--samples`` rows each, wrapping around a store of ``--store-rows`` seeded rows
(W1's data, see ``w1_engine_overhead.py``). Ratios between sizes are printed at the end:
cold start at the largest population over the smallest, engine over plain s/round (for the
same work: see ``w1_engine_overhead.per_round``; "eng/alone" divides by the plain loop's rounds
2 on without its round-1 evaluation).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from w1_engine_overhead import (
    build_data,
    engine_run,
    in_fresh_process,
    per_round,
    plain_loop,
    scenario,
)

from simfl.engine.plan import RunPlan

NUM_CLASSES = 12


def measure(clients: int, args: argparse.Namespace) -> dict[str, float]:
    run_args = argparse.Namespace(**{**vars(args), "clients": clients})
    train, test, index, test_labels = build_data(
        args.workdir, clients, args.samples, args.test_samples, args.store_rows
    )
    plan = RunPlan(
        scenario(run_args, args.workdir),
        train.directory,
        test.directory,
        index.directory,
        NUM_CLASSES,
    )
    clock, engine_peak, _ = in_fresh_process(
        engine_run, plan, test_labels, np.arange(args.test_samples)
    )
    plain, plain_peak, _ = in_fresh_process(
        plain_loop, plan, train, index, test, test_labels, run_args
    )
    engine_s, plain_s = per_round(clock, plain)
    return {
        "clients": clients,
        "cold_start_s": clock.cold_start,
        "startup_per_1000_clients_s": clock.cold_start / (clients / 1000),
        "engine_s_per_round": engine_s,
        "plain_s_per_round": plain_s,  # the same work (w1_engine_overhead.per_round)
        "plain_rounds_alone_s": float(np.mean(plain.rounds[1:])),  # without round 1's eval
        "engine_peak_rss_gib": engine_peak / 2**30,
        "plain_peak_rss_gib": plain_peak / 2**30,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--store-rows", type=int, default=20_000)
    parser.add_argument("--test-samples", type=int, default=1000)
    parser.add_argument("--client-cpus", type=float, default=1.0)
    parser.add_argument("--plain-threads", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path(".cache/simfl/bench-scale"))
    args = parser.parse_args()
    rows = [measure(clients, args) for clients in args.clients]
    print(f"{'clients':>9} {'cold s':>8} {'s/1k cl':>8} {'eng s/r':>8} {'plain s/r':>9} "
          f"{'eng/plain':>9} {'eng GiB':>8} {'plain GiB':>9} {'eng/alone':>9}")  # fmt: skip
    for r in rows:
        print(
            f"{r['clients']:>9} {r['cold_start_s']:8.2f} {r['startup_per_1000_clients_s']:8.3f} "
            f"{r['engine_s_per_round']:8.2f} {r['plain_s_per_round']:9.2f} "
            f"{r['engine_s_per_round'] / r['plain_s_per_round']:9.2f} "
            f"{r['engine_peak_rss_gib']:8.2f} {r['plain_peak_rss_gib']:9.2f} "
            f"{r['engine_s_per_round'] / r['plain_rounds_alone_s']:9.2f}"
        )
    print("eng/alone: over the plain loop's rounds 2 on without its round-1 evaluation")
    if len(rows) > 1:
        ratio = rows[-1]["cold_start_s"] / rows[0]["cold_start_s"]
        print(f"cold start {rows[-1]['clients']} / {rows[0]['clients']} clients: {ratio:.2f}x")
    print(f"plain loop threads: {args.plain_threads}; GLIBC_TUNABLES: "
          f"{os.environ.get('GLIBC_TUNABLES', '')}")  # fmt: skip


if __name__ == "__main__":
    main()
