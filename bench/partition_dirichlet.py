"""Dirichlet label-shift partitioning: simfl's vectorized partitioner vs Flower Datasets'.

1,000,000 labels (35 classes, uniform), 1,000 clients, alpha 0.5, min size 10, in one run:
both partitioners get the same ``datasets.Dataset`` and split it through the same Flower
Datasets interface (``partitioner.dataset = ds``; ``load_partition(0)`` computes the whole
split; ours through ``partitioners.flower.FlowerPartitioner``); ours is also timed on the bare
label array (``split``). Best of ``--repeats`` fresh
partitioners each. Prints the times and the ratio, without and with self-balancing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import datasets
import numpy as np
from flwr_datasets.partitioner import DirichletPartitioner as FlowerDirichlet

from partitioners.dirichlet import DirichletPartitioner
from partitioners.flower import FlowerPartitioner
from partitioners.params import DirichletParams


def best_of(repeats: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def through_interface(partitioner, dataset: datasets.Dataset) -> Callable[[], object]:
    def run() -> object:
        fresh = partitioner()
        fresh.dataset = dataset
        return fresh.load_partition(0)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--classes", type=int, default=35)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--min-size", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    labels = np.random.default_rng(0).integers(0, args.classes, size=args.samples)
    dataset = datasets.Dataset.from_dict({"label": labels})
    print(
        f"{args.samples:,} labels ({args.classes} classes) -> {args.clients:,} clients, "
        f"alpha {args.alpha}, min size {args.min_size}; best of {args.repeats}"
    )
    for balancing in (False, True):
        params = DirichletParams(alpha=args.alpha, min_size=args.min_size, self_balancing=balancing)
        bare = partial(DirichletPartitioner, args.clients, params, 0)
        ours = lambda bare=bare: FlowerPartitioner(bare())  # noqa: E731
        flower = lambda b=balancing: FlowerDirichlet(  # noqa: E731
            num_partitions=args.clients,
            partition_by="label",
            alpha=args.alpha,
            min_partition_size=args.min_size,
            self_balancing=b,
            seed=0,
        )
        t_flower = best_of(args.repeats, through_interface(flower, dataset))
        t_ours = best_of(args.repeats, through_interface(ours, dataset))
        t_bare = best_of(args.repeats, lambda bare=bare: bare().split(labels))
        print(
            f"self_balancing={balancing!s:5}  flwr-datasets {t_flower:7.3f} s | simfl "
            f"{t_ours:7.3f} s (ratio {t_flower / t_ours:5.1f}x) | simfl on the bare array "
            f"{t_bare:7.3f} s (ratio {t_flower / t_bare:5.1f}x)"
        )


if __name__ == "__main__":
    main()
