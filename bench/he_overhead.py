"""HE overhead per round: the same scenario with and without CKKS aggregation, side by side.

For each model (the quickstart's KWS CNN from ``scenarios/privacy-he.toml``, and the
Whisper-KWS head from ``scenarios/whisper-kws.toml``, whose frozen encoder never travels), one
``simfl sweep`` over ``privacy.he.enabled = [false, true]`` runs both sides in one process and
one Ray runtime, with the same seeds and cohorts, so machine load and start-up affect both
alike. Figures per trained round, the first ``--warmup`` trained rounds left out: bytes up and
down, round and training wall seconds and their ratios HE / plain; the clients' mean
encryption seconds, the server's ciphertext-sum seconds, the key authority's decryption
seconds, the largest CKKS error bound; the final central accuracy of both sides.

Usage: ``simfl bench he [--rounds R] [--warmup W] [--models kws-cnn,whisper-kws]
[--cache-dir DIR] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import pandas as pd
from simfl_process import REPO, add_cache_and_json_arguments, run_overrides, set_flags, simfl

SCENARIOS = {
    "kws-cnn": REPO / "scenarios" / "privacy-he.toml",
    "whisper-kws": REPO / "scenarios" / "whisper-kws.toml",
}
RATIOS = ("bytes_up", "bytes_down", "round_seconds", "train_seconds")
HE_COLUMNS = ("he_encrypt_seconds_mean", "he_server_seconds", "he_decrypt_seconds")


def per_round(cell: Path, warmup: int) -> dict[str, float]:
    metrics = pd.read_parquet(cell / "metrics.parquet")
    trained = metrics[metrics["round"] > warmup]
    out = {name: float(trained[name].mean()) for name in RATIOS}
    for name in HE_COLUMNS:
        if name in trained:
            out[name] = float(trained[name].mean())
    if "he_error_bound" in trained:
        out["he_error_bound_max"] = float(trained["he_error_bound"].max())
    out["final_central_accuracy"] = float(metrics["central_accuracy"].iloc[-1])
    return out


def compare(model: str, args: argparse.Namespace, work: Path) -> dict[str, dict[str, float]]:
    """Both sides of ``model``'s scenario: figures per trained round, by side."""
    scenario = SCENARIOS[model]
    sets = [
        *run_overrides(args.rounds, args.cache_dir),
        f"tracking.results_dir={work / model / 'results'}",
    ]
    flags = set_flags(sets)
    (work / model).mkdir(parents=True)
    sweep = work / model / "he-overhead.toml"
    text = scenario.read_text()
    if "[privacy.he]" not in text:
        text += "\n[privacy.he]\nenabled = true\n"
    sweep.write_text(text + '\n[sweep]\n"privacy.he.enabled" = [false, true]\n')
    simfl("data", "prepare", str(scenario), *flags, cwd=work)  # neither side pays data prep
    simfl("sweep", str(sweep), *flags, cwd=work)
    (sweep_dir,) = (work / model / "results" / "sweeps").iterdir()
    index = pd.read_parquet(sweep_dir / "index.parquet")
    return {
        "he" if cell["privacy.he.enabled"] else "plain": per_round(
            sweep_dir / "cells" / cell["cell_id"], args.warmup
        )
        for cell in index.to_dict("records")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--models", default=",".join(SCENARIOS))
    add_cache_and_json_arguments(parser)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="simfl-bench-he-"))
    load_before = os.getloadavg()
    figures = {model: compare(model, args, work) for model in args.models.split(",")}
    load_after = os.getloadavg()
    print(f"load average before {load_before}, after {load_after}")
    print(f"rounds {args.warmup + 1}-{args.rounds} of each side (1..{args.warmup}: warm-up)")
    print(
        f"{'model':12s} {'bytes up x':>10s} {'bytes down x':>12s} {'round s x':>9s} "
        f"{'train s x':>9s} {'encrypt s':>9s} {'server s':>8s} {'decrypt s':>9s} "
        f"{'max error':>9s} {'acc plain':>9s} {'acc HE':>7s}"
    )
    for model, sides in figures.items():
        plain, he = sides["plain"], sides["he"]
        ratio = {name: he[name] / plain[name] if plain[name] else float("nan") for name in RATIOS}
        sides["ratio"] = ratio
        print(
            f"{model:12s} {ratio['bytes_up']:10.1f} {ratio['bytes_down']:12.2f} "
            f"{ratio['round_seconds']:9.2f} {ratio['train_seconds']:9.2f} "
            f"{he['he_encrypt_seconds_mean']:9.4f} {he['he_server_seconds']:8.4f} "
            f"{he['he_decrypt_seconds']:9.4f} {he['he_error_bound_max']:9.2e} "
            f"{plain['final_central_accuracy']:9.3f} {he['final_central_accuracy']:7.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "work": str(work)}, indent=2))


if __name__ == "__main__":
    main()
