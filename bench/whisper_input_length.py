"""Whisper encoder on 1 s keywords: Whisper's full 30 s input vs ``input_frames`` frames.

Why: Whisper pads every clip to 30 s (3000 frames, 1500 encoder positions); a 1 s keyword needs
100 frames. This measures forward+backward seconds per batch of whisper-kws for both lengths
(same weights apart from the sliced position table) and prints the speed-up.

    simfl bench whisper-length [--preset whisper-tiny] [--batch 8] [--repeats 3] [--train-all]
"""

from __future__ import annotations

import argparse
import time

import torch

from simfl.models.whisper_common import FULL_FRAMES
from simfl.models.whisper_kws import build_whisper_kws
from simfl.schema.model import WhisperKwsParams


def seconds_per_batch(frames: int, args: argparse.Namespace) -> float:
    """Median forward+backward time of one batch of ``frames``-frame inputs."""
    torch.manual_seed(0)
    params = WhisperKwsParams(
        name="whisper-kws",
        config_preset=args.preset,
        input_frames=frames,
        train_all=args.train_all,
    )
    model = build_whisper_kws(params, 12)
    x = torch.randn(args.batch, 80, frames)
    y = torch.randint(0, 12, (args.batch,))
    times = []
    for _ in range(args.repeats + 1):  # the first pass warms up allocators and kernels
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="whisper-tiny", choices=["whisper-tiny", "test-small"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--short-frames", type=int, default=100)
    parser.add_argument("--train-all", action="store_true", help="backward through the encoder")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    full = seconds_per_batch(FULL_FRAMES, args)
    short = seconds_per_batch(args.short_frames, args)
    mode = "all weights trained" if args.train_all else "encoder frozen"
    threads = torch.get_num_threads()
    print(f"whisper-kws {args.preset}, batch {args.batch}, {mode}, {threads} threads")
    print(f"  {FULL_FRAMES} frames (30 s): {full:.3f} s per batch (forward+backward)")
    print(f"  {args.short_frames} frames ({args.short_frames / 100:g} s): {short:.4f} s per batch")
    print(f"  speed-up: {full / short:.1f}x")


if __name__ == "__main__":
    main()
