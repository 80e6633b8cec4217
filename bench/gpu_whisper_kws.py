"""whisper-kws on one GPU: fractional ``num_gpus`` per client, fp32 vs bf16, vs a plain loop.

Why: a frozen whisper-tiny encoder needs little GPU memory per client, so Ray can pack several
ClientApp actors onto one GPU (``resources.num_gpus`` = 0.1 -> 10 actors), and bf16 autocast
should make each one faster and smaller. For every (precision, fraction) this runs
scenarios/whisper-kws.toml (whisper-tiny dimensions; all 12 clients train every round so that
0.1 can pack 10 at once) through simfl's engine on one Ray runtime and prints

- seconds per round (rounds 2.. timed; round 1 pays actor start-up and CUDA init),
- clients per GPU asked and run (after simfl's memory probe) and clients at once,
- one client's peak GPU memory (the probe: ``torch.cuda.max_memory_allocated`` of a real
  training and evaluation step) and the device's peak memory in use during the run,
- a plain single-process GPU loop doing the same rounds (each client trained in turn, FedAvg
  of the trained head, central evaluation) and the engine/plain ratio.

    python bench/gpu_whisper_kws.py [--fractions 0.1 0.25 0.5] [--precisions fp32 bf16]
                                    [--rounds 3] [--json figures.json]
    python bench/gpu_whisper_kws.py --cpu-smoke   # tiny, on CPU with a declared GPU (tests)

(also ``simfl bench gpu-whisper``; ``bench/gpu_check.sh`` runs it as the device check).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simfl.config import Scenario, load_scenario
from simfl.data.client_index import ClientIndex
from simfl.data.feature_store import FeatureStore
from simfl.engine.plan import RunPlan
from simfl.engine.runtime import RaySession, ray_session
from simfl.personalization import frozen_names, split_state
from simfl.pipeline import prepare_run
from simfl.run import RunOptions, run_scenario
from simfl.seeding import derive_seed
from simfl.training import cpu_state, evaluate, train_epochs

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "whisper-kws.toml"
GIB = 2**30

#: Every client trains every round: 12 per round, so 0.1 GPU per client can run 10 at once.
ALL_CLIENTS = ["strategy.fraction_train=1.0"]

#: --cpu-smoke: a tiny dataset and model, one round, one declared GPU, no CUDA.
SMOKE = [
    "data.num_clients=3",
    'data.synth.words=["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]',
    "data.synth.num_speakers=8",
    "data.synth.takes_per_speaker=1",
    "data.synth.silence_clips_per_speaker=1",
    "data.synth.test_speaker_fraction=0.25",
    "partition.group_size=2",
    'model.config_preset="test-small"',
    "model.head_channels=4",
    "strategy.min_train_nodes=3",
    "strategy.min_evaluate_nodes=3",
    "strategy.min_available_nodes=3",
    "strategy.fraction_evaluate=1.0",
]


class DevicePeak:
    """The most memory in use on GPU 0 (every process) while the block runs, sampled."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s, self.peak = interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            free, total = torch.cuda.mem_get_info(0)
            self.peak = max(self.peak, total - free)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> DevicePeak:
        if torch.cuda.is_available():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def scenario_for(args: argparse.Namespace, work: Path, precision: str, fraction: float):
    overrides = [
        f"scenario.rounds={args.rounds}",
        f"resources.num_gpus={fraction}",
        f"resources.num_cpus={args.cpus_per_client}",
        f'train.precision="{precision}"',
        f'tracking.results_dir="{work / "results"}"',
        f'tracking.cache_dir="{args.cache_dir}"',
        *ALL_CLIENTS,
        *(SMOKE if args.cpu_smoke else []),
    ]
    if args.budget_gib:
        overrides.append(f"resources.gpu_memory_gib={args.budget_gib}")
    return load_scenario(SCENARIO, overrides)


def engine_run(scenario: Scenario, session: RaySession) -> dict[str, Any]:
    """One whisper-kws run through simfl's engine on ``session``."""
    with DevicePeak() as device:
        options = RunOptions(wandb_mode="disabled", session=session)
        outcome = run_scenario(scenario, options)
    rounds = [r for r in outcome.history.rounds if r.round > 0]
    timed = rounds[1:] or rounds  # round 1 pays actor start-up and CUDA initialisation
    packing = outcome.summary.get("gpu_packing", {})
    return {
        "precision": scenario.train.precision,
        "num_gpus": scenario.resources.num_gpus,
        "engine_round_s": sum(r.round_seconds for r in timed) / len(timed),
        "clients_per_gpu_asked": packing.get("clients_per_gpu_asked"),
        "clients_per_gpu": packing.get("clients_per_gpu"),
        "concurrent_clients": outcome.summary["throughput"]["concurrent_clients"],
        "client_peak_bytes": packing.get("client_peak_bytes"),
        "device_peak_bytes": device.peak or None,
        "packing": packing,
        "final_central_accuracy": outcome.summary["final"]["central_accuracy"],
    }


def plain_loop(scenario: Scenario, device: torch.device, threads: int) -> float:
    """The same rounds in one process on ``device``: every client trains in turn, FedAvg of
    what travels, as many clients evaluate their local test split as the engine samples, and
    central evaluation; mean seconds per round over rounds 2.. (round 1 if only one). Torch
    gets ``threads`` threads, as one client actor does."""
    torch.set_num_threads(threads)
    prepared = prepare_run(scenario)
    data, federation = prepared.data, prepared.federation
    plan = RunPlan(
        scenario, federation.train_store, data.test.store_dir, federation.index_dir,
        data.num_classes,
    )  # fmt: skip
    store, index = FeatureStore.open(plan.train_store), ClientIndex(plan.index_dir)
    model = plan.initial_model().to(device)
    frozen = frozen_names(model)
    global_shared = split_state(cpu_state(model), frozenset(), frozen)[0]
    test_x = torch.from_numpy(FeatureStore.open(plan.test_store).read(data.test.rows))
    test_y = torch.from_numpy(np.asarray(data.test.labels, dtype=np.int64))
    train, times = scenario.train, []
    strategy, clients = scenario.strategy, index.num_clients
    evaluating = max(int(clients * strategy.fraction_evaluate), strategy.min_evaluate_nodes)
    for server_round in range(1, scenario.scenario.rounds + 1):
        start = time.perf_counter()
        total, summed = 0, None
        for cid in range(index.num_clients):
            split = index.client(cid)
            x = torch.from_numpy(store.read(split.train_rows))
            y = torch.from_numpy(split.train_labels.astype(np.int64))
            model.load_state_dict(global_shared, strict=False)
            seed = derive_seed(scenario.scenario.seed, "train", cid, server_round)
            stats = train_epochs(model, x, y, train, seed)
            shared = split_state(cpu_state(model), frozenset(), frozen)[0]
            weighted = {k: v.double() * stats.num_examples for k, v in shared.items()}
            summed = weighted if summed is None else {k: summed[k] + weighted[k] for k in summed}
            total += stats.num_examples
        global_shared = {k: (v / total).float() for k, v in summed.items()}
        model.load_state_dict(global_shared, strict=False)
        for cid in range(min(evaluating, clients)):  # federated evaluation
            split = index.client(cid)
            x = torch.from_numpy(store.read(split.test_rows))
            y = torch.from_numpy(split.test_labels.astype(np.int64))
            evaluate(model, x, y, train.eval_batch_size, None, train.precision)
        evaluate(model, test_x, test_y, train.eval_batch_size, None, train.precision)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    del model, test_x, test_y
    if device.type == "cuda":
        torch.cuda.empty_cache()  # leave the GPU to the engine runs that follow
    timed = times[1:] or times
    return sum(timed) / len(timed)


def _mib(value: int | None) -> str:
    return f"{value / 2**20:.0f}" if value else "-"


HEADER = (
    f"{'precision':9} {'num_gpus':>8} {'clients/GPU':>11} {'at once':>7} {'engine s/round':>14} "
    f"{'plain s/round':>13} {'engine/plain':>12} {'client peak MiB':>15} {'device peak MiB':>15}"
)


def row(run: dict[str, Any]) -> str:
    """One engine run against the plain loop of its precision (asked->run when capped)."""
    asked, ran = run["clients_per_gpu_asked"], run["clients_per_gpu"]
    per_gpu = f"{ran}" if asked == ran else f"{asked}->{ran}"
    base = run["plain_round_s"]
    return (
        f"{run['precision']:9} {run['num_gpus']:>8g} {per_gpu:>11} "
        f"{run['concurrent_clients']:>7} {run['engine_round_s']:>14.2f} {base:>13.2f} "
        f"{run['engine_round_s'] / base:>12.2f} {_mib(run['client_peak_bytes']):>15} "
        f"{_mib(run['device_peak_bytes']):>15}\n  {run['packing']['line']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-gib", type=float, help="GPU memory budget (default: device)")
    parser.add_argument("--cpus-per-client", type=float, default=1.0)
    parser.add_argument("--cache-dir", default=str(REPO / ".cache" / "simfl"))
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny CPU run (tests)")
    parser.add_argument("--json", type=Path, help="also write the figures here (after each run)")
    args = parser.parse_args()
    if args.cpu_smoke:
        args.fractions, args.rounds = [0.5], 1  # two actors: light on a small CPU machine
    elif not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible; use --cpu-smoke to check the script on CPU")
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    device_name = "CPU (smoke, declared GPU)" if args.cpu_smoke else torch.cuda.get_device_name()
    work = Path(args.cache_dir).parent / "bench-gpu-whisper"
    figures: dict[str, Any] = {"device": device_name, "rounds": args.rounds, "plain": {}}
    figures["runs"] = runs = []

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str))

    # the plain loop first: it prepares the data, and its figures come even if time runs out
    plain = figures["plain"]
    for precision in args.precisions:
        scenario = scenario_for(args, work, precision, 1.0)
        plain[precision] = plain_loop(scenario, device, max(1, int(args.cpus_per_client)))
        print(f"plain single-process loop, {precision}: {plain[precision]:.2f} s per round")
        save()
    if "fp32" in plain:
        for precision in plain.keys() - {"fp32"}:
            print(f"plain loop {precision} / fp32: {plain[precision] / plain['fp32']:.2f}")
    print(f"whisper-kws on {device_name}, {args.rounds} rounds (2.. timed)\n{HEADER}", flush=True)
    # one GPU (declared to Ray in the smoke); CPUs enough for 1 / min(fraction) actors
    cpus = max(os.cpu_count() or 1, int(1 / min(args.fractions) * args.cpus_per_client))
    with ray_session(None, {"num_gpus": 1, "num_cpus": cpus}) as session:
        for precision in args.precisions:
            for fraction in args.fractions:
                run = engine_run(scenario_for(args, work, precision, fraction), session)
                run["plain_round_s"] = plain[precision]
                run["packing"]["line"] = _packing_line(run["packing"])
                runs.append(run)
                print(row(run), flush=True)
                save()


def _packing_line(packing: dict[str, Any]) -> str:
    from simfl.engine.gpu_packing import GpuPacking

    fields = {k: v for k, v in packing.items() if k in GpuPacking.__dataclass_fields__}
    return GpuPacking(**fields).line() if fields else ""


if __name__ == "__main__":
    main()
