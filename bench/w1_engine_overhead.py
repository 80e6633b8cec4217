"""W1: what simfl's engine costs over a plain single-process torch loop doing identical work.

100 clients x 200 samples of [1, 40, 101] log-mel features, the reference CNN
(Conv 1->16 / Conv 16->32 / Linear 32->12), 10 clients per round, 1 local epoch, batch 32,
SGD lr 0.05, 6 rounds with rounds 2-6 timed, central evaluation on 1,000 held-out samples after
every round in both. Both run in this one process tree, one after the other; run it through
``simfl bench w1`` (or ``make bench``), which sets GLIBC_TUNABLES for both as the issue asks.

Where the engine's central evaluation overlaps the next round (``resources.
evaluation_overlap``), round r's evaluation runs in round r+1's time, so the engine's rounds 2-6
hold evaluations 1-6; the plain loop's window then also counts its round-1 evaluation, so that
both windows hold the same trainings and evaluations (:func:`per_round`; the plain loop's rounds
2-6 alone are printed too).

Prints seconds per round for both, their ratio, the engine's cold start (Ray, actors and the
first central evaluation before round 1) and the peak resident memory of the whole process tree
(the phase's process, Ray's daemons and its workers) during each phase. Each phase runs in a
fresh process of its own (:func:`in_fresh_process`), so neither carries the other's memory:
with ``GLIBC_TUNABLES``' 1 GiB trim threshold a process never gives freed memory back.

``--intra-op-threads 1,2`` (or ``1,2,2,1``) runs one engine per entry, in that order, against
the same plain loop, and prints the mean seconds per round of each thread count and their
ratio: what results independent of ``resources.num_cpus`` (``train.intra_op_threads = 1``)
cost beside threads that follow the client's CPUs, measured in one invocation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

from simfl.config import scenario_from_dict
from simfl.data.client_index import ClientIndex
from simfl.data.feature_store import FeatureStore
from simfl.data.settings import FeatureSettings
from simfl.engine.client_app import build_client_app
from simfl.engine.extensions import EvaluationData
from simfl.engine.nodes import engine_slots
from simfl.engine.plan import RunPlan
from simfl.engine.records import RoundRecord
from simfl.engine.runtime import evaluation_overlap_here, simulate
from simfl.engine.server_app import build_server_app
from simfl.schema.sections import ResourcesConfig
from simfl.seeding import derive_seed, rng_for
from simfl.tracking.callbacks import RunCallback
from simfl.training import evaluate, train_epochs

NUM_CLASSES = 12
CHUNK = 500


class PeakMemory:
    """Samples the summed RSS of this process and all its descendants every 100 ms, and keeps
    each process's RSS at the peak (by Ray's process title), to show where the memory is."""

    def __init__(self) -> None:
        self.peak = 0
        self.at_peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _tree_rss(self) -> dict[str, int]:
        root = psutil.Process()
        sizes = {"driver": root.memory_info().rss}
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                title = " ".join(child.cmdline())[:40] or child.name()
                sizes[f"{title} [{child.pid}]"] = child.memory_info().rss
        return sizes

    def _update(self) -> None:
        sizes = self._tree_rss()
        if sum(sizes.values()) > self.peak:
            self.peak, self.at_peak = sum(sizes.values()), sizes

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._update()
            self._stop.wait(0.1)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._update()

    def breakdown(self) -> dict[str, float]:
        """MiB per process at the peak, largest first."""
        ranked = sorted(self.at_peak.items(), key=lambda item: -item[1])
        return {name: size / 2**20 for name, size in ranked}


def _measured(phase: Callable[..., Any], *phase_args: Any) -> tuple[Any, int, dict[str, float]]:
    with PeakMemory() as memory:
        result = phase(*phase_args)
    return result, memory.peak, memory.breakdown()


def in_fresh_process(
    phase: Callable[..., Any], *phase_args: Any
) -> tuple[Any, int, dict[str, float]]:
    """``phase(*phase_args)`` in a new interpreter: its result, the peak RSS of that process's
    tree while it ran, and each process's RSS (MiB) at the peak."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(_measured, phase, *phase_args).result()


def random_audio(num_rows: int, seed: int):
    """Batches of seeded noise clips; the store turns them into [40, 101] log-mel rows."""
    for start in range(0, num_rows, CHUNK):
        rng = np.random.default_rng([seed, start])
        size = min(CHUNK, num_rows - start)
        yield rng.integers(-8000, 8000, size=(size, 16000), dtype=np.int16)


def build_data(
    workdir: Path, clients: int, samples: int, test_samples: int, store_rows: int | None = None
):
    """Feature stores, labels and a client index: client c owns ``samples`` rows.

    With ``store_rows`` smaller than clients x samples, clients' rows wrap around a store of
    that many rows (a population of 10^5 clients needs no 8 GB of features to measure the
    engine: every client still trains on ``samples`` real rows).
    """
    settings = FeatureSettings()
    total = clients * samples
    rows_in_store = min(total, store_rows or total)
    train = FeatureStore.build(
        random_audio(rows_in_store, 1),
        num_rows=rows_in_store,
        settings=settings,
        directory=workdir / f"train-{rows_in_store}",
        source_fingerprint=f"w1-train-{rows_in_store}",
    )
    test = FeatureStore.build(
        random_audio(test_samples, 2),
        num_rows=test_samples,
        settings=settings,
        directory=workdir / f"test-{test_samples}",
        source_fingerprint=f"w1-test-{test_samples}",
    )
    labels = rng_for(0, "w1-labels").integers(0, NUM_CLASSES, size=total)
    parts = [np.arange(c * samples, (c + 1) * samples) for c in range(clients)]
    index = ClientIndex.build(
        workdir / f"index-{clients}x{samples}-{rows_in_store}",
        parts,
        np.arange(total) % rows_in_store,
        labels,
        0.0,
        0,
    )
    test_labels = rng_for(0, "w1-test-labels").integers(0, NUM_CLASSES, size=test_samples)
    return train, test, index, test_labels


def scenario(args: argparse.Namespace, workdir: Path, intra_op_threads: int = 1):
    return scenario_from_dict(
        {
            "scenario": {"name": "bench-w1", "seed": 0, "rounds": args.rounds},
            "data": {
                "dataset": "synth-commands",
                "num_clients": args.clients,
                "local_test_fraction": 0.0,
            },
            "partition": {"kind": "iid"},
            "model": {"name": "kws-cnn", "channels": [16, 32]},
            "train": {
                "local_epochs": 1,
                "batch_size": 32,
                "optimizer": "sgd",
                "lr": 0.05,
                "intra_op_threads": intra_op_threads,
            },
            "strategy": {
                "name": "fedavg",
                "fraction_train": args.per_round / args.clients,
                "fraction_evaluate": 0.0,
                "min_train_nodes": args.per_round,
                "min_evaluate_nodes": 0,
                "min_available_nodes": args.clients,
            },
            "resources": {"num_cpus": args.client_cpus},
            "tracking": {"wandb_mode": "disabled", "cache_dir": str(workdir)},
        },
        "bench-w1",
    )


@dataclass(frozen=True)
class PlainTimes:
    rounds: list[float]  # wall seconds of each round, its central evaluation included
    evaluations: list[float]  # wall seconds of each round's central evaluation


def plain_loop(plan: RunPlan, train, index, test, test_labels, args) -> PlainTimes:
    """The same rounds in one process: sample, train each client, average, evaluate."""
    torch.set_num_threads(args.plain_threads)
    model, central = plan.build_model(), plan.build_model()
    torch.manual_seed(derive_seed(0, "model-init"))
    global_state = {k: v.clone() for k, v in plan.build_model().state_dict().items()}
    test_x = torch.from_numpy(test.read(np.arange(len(test))))
    test_y = torch.from_numpy(test_labels)
    times, evaluations = [], []
    for server_round in range(1, args.rounds + 1):
        start = time.perf_counter()
        chosen = rng_for(0, "w1-plain-sample", server_round).choice(
            args.clients, args.per_round, replace=False
        )
        total, summed = 0, None
        for cid in sorted(chosen):
            split = index.client(int(cid))
            x = torch.from_numpy(train.read(split.train_rows))
            y = torch.from_numpy(split.train_labels.astype(np.int64))
            model.load_state_dict(global_state)
            seed = derive_seed(0, "train", int(cid), server_round)
            stats = train_epochs(model, x, y, plan.scenario.train, seed)
            state = {
                k: v.detach().numpy() * stats.num_examples for k, v in model.state_dict().items()
            }
            summed = state if summed is None else {k: summed[k] + state[k] for k in summed}
            total += stats.num_examples
        global_state = {k: torch.from_numpy(v / total) for k, v in summed.items()}
        evaluated = time.perf_counter()
        central.load_state_dict(global_state)
        evaluate(central, test_x, test_y, plan.scenario.train.eval_batch_size)
        times.append(time.perf_counter() - start)
        evaluations.append(time.perf_counter() - evaluated)
    return PlainTimes(times, evaluations)


def per_round(engine: RoundClock, plain: PlainTimes) -> tuple[float, float]:
    """Seconds per round of the engine and of the plain loop over rounds 2 onwards, for the
    same work. Where the engine's central evaluation overlaps the next round (resources.
    evaluation_overlap), round r's evaluation runs in round r+1's time: its rounds 2..R hold
    trainings 2..R and evaluations 1..R. The plain loop's round-1 evaluation then joins its
    window, which holds the same trainings and evaluations."""
    engine_times = [record.round_seconds for record in engine.rounds]
    plain_window = sum(plain.rounds[1:])
    if engine.overlap != "off":
        plain_window += plain.evaluations[0]
    return float(np.mean(engine_times[1:])), plain_window / (len(plain.rounds) - 1)


class RoundClock(RunCallback):
    """Wall-clock of each round as the engine reports it, when round 0 (setup) ended, and
    where central evaluation ran (asked as the engine's loop asks, while Ray runs)."""

    def __init__(self, started: float, resources: ResourcesConfig) -> None:
        self.started = started
        self.cold_start = float("nan")
        self.rounds: list[RoundRecord] = []
        self.resources = resources
        self.overlap = "off"

    def on_round_end(self, record: RoundRecord) -> None:
        if record.round == 0:
            self.cold_start = time.perf_counter() - self.started
            self.overlap = evaluation_overlap_here(self.resources)
        else:
            self.rounds.append(record)


def engine_run(plan: RunPlan, test_labels: np.ndarray, test_rows: np.ndarray) -> RoundClock:
    clock = RoundClock(time.perf_counter(), plan.scenario.resources)
    simulate(
        build_server_app(plan, EvaluationData(test_rows, test_labels), clock),
        build_client_app(plan),
        engine_slots(plan.scenario),
        plan.scenario.resources,
    )
    return clock


def thread_counts(text: str) -> list[int]:
    """``--intra-op-threads 1,2``: each count is its own engine run in this invocation."""
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed are positive integers, e.g. 1,2")
    return counts


def engine_figures(plan: RunPlan, test_labels, args, plain: PlainTimes) -> dict[str, Any]:
    """One engine run of ``plan`` beside the plain loop's times: its figures, keyed by name."""
    clock, peak, breakdown = in_fresh_process(
        engine_run, plan, test_labels, np.arange(args.test_samples)
    )
    engine_s, plain_s = per_round(clock, plain)
    return {
        "central_evaluation": f"overlap {clock.overlap} (resources.evaluation_overlap)",
        "engine_seconds_per_round": engine_s,
        "engine_over_plain": engine_s / plain_s,
        "engine_over_plain_per_core": engine_s / (plain_s / os.cpu_count()),
        "engine_cold_start_s": clock.cold_start,
        "engine_rounds_s": " ".join(f"{r.round_seconds:.2f}" for r in clock.rounds),
        "engine_peak_rss_mib": peak / 2**20,
        "engine_rss_at_peak_mib": breakdown,
    }


def print_figures(figures: dict[str, Any], indent: str = "") -> None:
    """Figures one a line; a nested record (one engine run, RSS per process) indented."""
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            print_figures(value, indent + "  ")
        elif isinstance(value, float):
            print(f"{indent}{key:26s} {value:.3f}")
        else:
            print(f"{indent}{key:26s} {value}")


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """W1's size, the CPUs an engine client takes, the data's directory and ``--json``: the
    options every benchmark of the W1 workload takes (this one and ``flower_w1``)."""
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--test-samples", type=int, default=1000)
    parser.add_argument(
        "--client-cpus", type=float, default=1.0, help="CPUs an engine client takes"
    )
    parser.add_argument("--workdir", type=Path, default=Path(".cache/simfl/bench-w1"))
    parser.add_argument("--json", type=Path, help="also write the figures here")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_arguments(parser)
    parser.add_argument(
        "--intra-op-threads",
        type=thread_counts,
        default=[1],
        help="torch threads a client; several (1,2) run one engine each, side by side",
    )
    parser.add_argument("--plain-threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    train, test, index, test_labels = build_data(
        args.workdir, args.clients, args.samples, args.test_samples
    )
    plans = {
        threads: RunPlan(
            scenario(args, args.workdir, threads),
            train.directory,
            test.directory,
            index.directory,
            NUM_CLASSES,
        )
        for threads in args.intra_op_threads
    }
    first = plans[args.intra_op_threads[0]]
    plain, plain_peak, _ = in_fresh_process(
        plain_loop, first, train, index, test, test_labels, args
    )
    figures: dict[str, Any] = {
        "workload": f"W1: {args.clients} clients x {args.samples} samples, {args.per_round}/round",
        "plain_rounds_2_on_alone_s": float(np.mean(plain.rounds[1:])),
        "plain_rounds_s": " ".join(f"{t:.2f}" for t in plain.rounds),
        "plain_peak_rss_mib": plain_peak / 2**20,
        "plain_threads": args.plain_threads,
        "client_cpus": args.client_cpus,
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
    }
    runs = [(t, engine_figures(plans[t], test_labels, args, plain)) for t in args.intra_op_threads]
    if len(runs) == 1:
        figures.update(runs[0][1])
    else:
        figures["engine_runs"] = {f"{i + 1}: {t} threads": e for i, (t, e) in enumerate(runs)}
        mean = {
            t: float(np.mean([e["engine_seconds_per_round"] for u, e in runs if u == t]))
            for t in plans
        }
        figures["engine_s_per_round_by_threads"] = {str(t): m for t, m in mean.items()}
        first, last = list(plans)[0], list(plans)[-1]
        figures[f"engine_{first}_threads_over_{last}"] = mean[first] / mean[last]
    print_figures(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
