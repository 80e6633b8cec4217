"""whisper-kws on one GPU with fractional ``num_gpus`` per client: seconds per round, packing.

Why: a frozen whisper-tiny encoder needs little GPU memory per client, so Ray can pack several
ClientApp actors onto one GPU (``resources.num_gpus`` = 0.1 -> 10 actors). This measures, for
each fraction, the mean seconds per round of scenarios/whisper-kws.toml (whisper-tiny
dimensions) and how many clients ran at once, then one client's peak GPU memory (a training
step), which gives how many clients fit in a fixed memory budget.

    python bench/gpu_whisper_kws.py [--fractions 0.1 0.25 0.5] [--rounds 3] [--budget-gib 16]
    python bench/gpu_whisper_kws.py --cpu-smoke     # tiny, on CPU: checks the script runs

(also ``simfl bench gpu-whisper``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from simfl.config import load_scenario
from simfl.run import run_scenario

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "whisper-kws.toml"

#: --cpu-smoke: a tiny dataset and model, one round, no GPU.
SMOKE = [
    "scenario.rounds=1",
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
    "strategy.fraction_train=1.0",
    "strategy.fraction_evaluate=1.0",
]


def run_fraction(fraction: float, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One whisper-kws run with ``num_gpus = fraction`` per client (0 in the CPU smoke)."""
    overrides = [
        f"scenario.rounds={args.rounds}",
        f"resources.num_gpus={0.0 if args.cpu_smoke else fraction}",
        f"resources.num_cpus={args.cpus_per_client}",
        f'tracking.results_dir="{work / "results"}"',
        f'tracking.cache_dir="{args.cache_dir}"',
        *(SMOKE if args.cpu_smoke else []),
    ]
    outcome = run_scenario(load_scenario(SCENARIO, overrides), wandb_mode="disabled")
    rounds = [r for r in outcome.history.rounds if r.round > 0]
    return {
        "num_gpus": fraction,
        "mean_round_s": sum(r.round_seconds for r in rounds) / len(rounds),
        "concurrent_clients": outcome.summary["throughput"]["concurrent_clients"],
        "final_central_accuracy": outcome.summary["final"]["central_accuracy"],
    }


def client_peak_bytes(args: argparse.Namespace) -> int:
    """Peak GPU memory of one client's training step (model, activations, optimizer state)."""
    scenario = load_scenario(SCENARIO, SMOKE if args.cpu_smoke else [])
    from simfl.models.whisper_kws import build_whisper_kws

    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu_smoke else "cpu")
    model = build_whisper_kws(scenario.model, 12).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(scenario.train.batch_size, 80, scenario.model.input_frames, device=device)
    y = torch.randint(0, 12, (scenario.train.batch_size,), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated())
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    state = list(model.state_dict().values()) + grads
    return sum(t.numel() * t.element_size() for t in state)  # CPU: weights + grads only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-gib", type=float, default=16.0, help="GPU memory budget")
    parser.add_argument("--cpus-per-client", type=float, default=1.0)
    parser.add_argument("--cache-dir", default=str(REPO / ".cache" / "simfl"))
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny CPU run (tests)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.cpu_smoke:
        args.fractions, args.rounds = args.fractions[:1], 1
    elif not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible; use --cpu-smoke to check the script on CPU")
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_fraction(f, args, Path(tmp)) for f in args.fractions]
    peak = client_peak_bytes(args)
    budget = args.budget_gib * 2**30
    print(f"whisper-kws ({'cpu smoke' if args.cpu_smoke else torch.cuda.get_device_name()})")
    print(f"one client's peak memory: {peak / 2**20:.1f} MiB -> "
          f"{math.floor(budget / peak)} clients fit in {args.budget_gib:g} GiB")  # fmt: skip
    for run in runs:
        packed = math.floor(1 / run["num_gpus"])
        print(f"num_gpus {run['num_gpus']:g}: {run['mean_round_s']:.2f} seconds per round, "
              f"{run['concurrent_clients']} clients at once, {packed} clients per GPU by "
              f"fraction")  # fmt: skip
    if args.json:
        figures = {"client_peak_bytes": peak, "budget_gib": args.budget_gib, "runs": runs}
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
