"""Flower peer: W1 in a bare torch loop, in stock Flower and in simfl's engine, in one invocation.

Why: ``simfl bench w1`` compares the engine with a loop that shares simfl's model and training
code, so it cannot say what simfl costs beside the framework it wraps, or beside torch with no
framework at all. Here three independent implementations run the W1 workload of
``bench/w1_engine_overhead.py`` (100 clients x 200 samples of [1, 40, 101] log-mel features,
the reference CNN, 10 clients a round, 1 local epoch, batch 32, SGD lr 0.05, 6 rounds with
rounds 2-6 timed, central evaluation after every round) on the same numbers:

* bare: a plain ``nn.Module`` with kws-cnn's layer shapes (channels [16, 32]) written out in
  torch, tensors sliced by hand, plain SGD and FedAvg by hand; no simfl code.
* flower: ``flwr.simulation.run_simulation`` with a ClientApp written the Flower tutorial way
  (``@app.train`` / ``@app.evaluate`` exchanging ArrayRecord and MetricRecord) and a ServerApp
  running ``flwr.serverapp.strategy.FedAvg`` with an ``evaluate_fn`` for central evaluation;
  each client takes one CPU (``client_resources``). Same model and loops as the bare one.
* simfl: the engine exactly as W1 runs it (:func:`w1_engine_overhead.engine_run`).

The features are W1's (:func:`w1_engine_overhead.build_data`), exported once as plain
``.npy`` arrays in client order, so bare and Flower read what simfl's store holds. Each
implementation runs in a fresh process (:func:`w1_engine_overhead.in_fresh_process`), whose
process tree's peak RSS is measured. Cold start is the time from the phase's start (imports
done) to the end of the central evaluation of the initial model. Flower's ServerApp thread
evaluates it while Ray and the actors still start in the main thread, so Flower's start-up shows
in its round 1 instead; ``*_start_to_round_1_s`` (phase start to the end of round 1) compares
what each makes a user wait for the first trained model. Bare and Flower evaluate in batches of
32 rows, the Flower tutorial's test loader size and the row count simfl's CPU evaluation
forwards at once.

Where simfl overlaps its central evaluation with the next round (``resources.
evaluation_overlap``), its rounds 2-6 hold evaluations 1-6; the peers' windows for the ratios
with simfl then also count their round-1 evaluation (as in :func:`w1_engine_overhead.
per_round`), so that each window holds the same work. This module imports no simfl at its top:
every Flower actor imports it to unpickle the ClientApp, and simfl's imports there would be
charged to Flower.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation
from torch import nn

NUM_CLASSES = 12
BATCH_SIZE = 32
LR = 0.05
EVAL_BATCH = 32
MODEL_SEED = 0
FILES = ("train_x", "train_y", "test_x", "test_y")


class PlainCnn(nn.Module):
    """kws-cnn with channels [16, 32] in plain torch: per-clip standardization, two
    conv3x3-ReLU-maxpool2 blocks, global average pooling and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(32, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        var = x.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        x = (x - mean) * torch.rsqrt(var + 1e-5)
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.head(x.mean(dim=(2, 3)))


def initial_model() -> PlainCnn:
    """The same starting weights for bare and Flower."""
    torch.manual_seed(MODEL_SEED)
    return PlainCnn()


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, seed: int) -> float:
    """One epoch of minibatch SGD in a seeded shuffle; the mean training loss."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    total = 0.0
    for batch in order.split(BATCH_SIZE):
        optimizer.zero_grad()
        loss = loss_fn(model(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(batch)
    return total / len(y)


@torch.no_grad()
def test(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over the whole set."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    loss, correct = 0.0, 0
    for start in range(0, len(y), EVAL_BATCH):
        logits = model(x[start : start + EVAL_BATCH])
        loss += float(loss_fn(logits, y[start : start + EVAL_BATCH]))
        correct += int((logits.argmax(dim=1) == y[start : start + EVAL_BATCH]).sum())
    return loss / len(y), correct / len(y)


def partition(data_dir: str, pid: int, num_partitions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Client ``pid``'s rows: the exported arrays hold the clients' samples one after another."""
    x = np.load(Path(data_dir) / "train_x.npy", mmap_mode="r")
    y = np.load(Path(data_dir) / "train_y.npy", mmap_mode="r")
    size = len(y) // num_partitions
    rows = slice(pid * size, (pid + 1) * size)
    return torch.from_numpy(np.array(x[rows])), torch.from_numpy(np.array(y[rows]))


def test_set(data_dir: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = (np.load(Path(data_dir) / f"{name}.npy") for name in ("test_x", "test_y"))
    return torch.from_numpy(x), torch.from_numpy(y)


@dataclass(frozen=True)
class PeerTimes:
    rounds: list[float]  # wall seconds of rounds 1..R, central evaluation included
    evaluations: list[float]  # wall seconds of the central evaluation of rounds 1..R
    cold_start: float  # phase start to the end of the initial model's central evaluation


def bare_phase(data_dir: str, clients: int, per_round: int, rounds: int, threads: int) -> PeerTimes:
    """W1 with nothing but torch: sample, train each client, average by hand, evaluate."""
    torch.set_num_threads(threads)
    started = time.perf_counter()
    model, central = PlainCnn(), PlainCnn()
    global_state = {k: v.clone() for k, v in initial_model().state_dict().items()}
    test_x, test_y = test_set(data_dir)
    central.load_state_dict(global_state)
    test(central, test_x, test_y)
    cold_start = time.perf_counter() - started
    sampler = np.random.default_rng(0)
    times, evaluations = [], []
    for server_round in range(1, rounds + 1):
        start = time.perf_counter()
        total, summed = 0, {k: torch.zeros_like(v) for k, v in global_state.items()}
        for cid in sorted(sampler.choice(clients, per_round, replace=False)):
            x, y = partition(data_dir, int(cid), clients)
            model.load_state_dict(global_state)
            train(model, x, y, LR, seed=server_round * clients + int(cid))
            for k, v in model.state_dict().items():
                summed[k] += v * len(y)
            total += len(y)
        global_state = {k: v / total for k, v in summed.items()}
        evaluated = time.perf_counter()
        central.load_state_dict(global_state)
        test(central, test_x, test_y)
        times.append(time.perf_counter() - start)
        evaluations.append(time.perf_counter() - evaluated)
    return PeerTimes(times, evaluations, cold_start)


def client_app(data_dir: str) -> ClientApp:
    """A vanilla ClientApp, as in Flower's PyTorch tutorial: the partition from the node's
    config, the weights in an ArrayRecord, the metrics in a MetricRecord."""
    app = ClientApp()

    def received(
        msg: Message, context: Context
    ) -> tuple[int, int, nn.Module, torch.Tensor, torch.Tensor]:
        """This node's partition id and count, the received model and the node's data."""
        pid, count = (
            int(context.node_config["partition-id"]),
            int(context.node_config["num-partitions"]),
        )
        model = PlainCnn()
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        return pid, count, model, *partition(data_dir, pid, count)

    @app.train()
    def train_fn(msg: Message, context: Context) -> Message:
        pid, count, model, x, y = received(msg, context)
        config = msg.content["config"]
        seed = int(config["server-round"]) * count + pid
        loss = train(model, x, y, float(config["lr"]), seed)
        metrics = MetricRecord({"train_loss": loss, "num-examples": len(y)})
        content = RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics})
        return Message(content=content, reply_to=msg)

    @app.evaluate()
    def evaluate_fn(msg: Message, context: Context) -> Message:
        _, _, model, x, y = received(msg, context)
        loss, accuracy = test(model, x, y)
        metrics = MetricRecord({"eval_loss": loss, "eval_acc": accuracy, "num-examples": len(y)})
        return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)

    return app


def flower_phase(
    data_dir: str, clients: int, per_round: int, rounds: int, client_cpus: float
) -> PeerTimes:
    """W1 in stock Flower; a round ends when FedAvg's ``evaluate_fn`` returns for it."""
    import ray

    started = time.perf_counter()
    ends: list[float] = []
    evaluations: list[float] = []
    central, (test_x, test_y) = PlainCnn(), test_set(data_dir)

    def central_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        begin = time.perf_counter()
        central.load_state_dict(arrays.to_torch_state_dict())
        loss, accuracy = test(central, test_x, test_y)
        ends.append(time.perf_counter())
        evaluations.append(ends[-1] - begin)
        return MetricRecord({"loss": loss, "accuracy": accuracy})

    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = FedAvg(
            fraction_train=per_round / clients,
            fraction_evaluate=0.0,
            min_train_nodes=per_round,
            min_evaluate_nodes=0,
            min_available_nodes=clients,
        )
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(initial_model().state_dict()),
            num_rounds=rounds,
            train_config=ConfigRecord({"lr": LR}),
            evaluate_fn=central_evaluate,
        )

    try:
        run_simulation(
            server_app=server,
            client_app=client_app(data_dir),
            num_supernodes=clients,
            backend_config={"client_resources": {"num_cpus": client_cpus, "num_gpus": 0.0}},
        )
    finally:
        ray.shutdown()
    if len(ends) != rounds + 1:
        raise RuntimeError(
            f"Flower's ServerApp evaluated {len(ends)} times, not {rounds + 1}: "
            "it stopped early (its log above says why)"
        )
    return PeerTimes([float(t) for t in np.diff(ends)], evaluations[1:], ends[0] - started)


def export_arrays(workdir: Path, train: Any, test: Any, index: Any, test_labels: Any) -> Path:
    """W1's features and labels as plain ``.npy`` files in client order (kept for reuse)."""
    from simfl.atomic import publish_directory

    clients, samples = index.num_clients, len(index.client(0).train_rows)
    target = workdir / f"peers-{clients}x{samples}-{len(test_labels)}"

    def fill(staging: Path) -> None:
        shape = (clients * samples, *train.shape[1:])
        x = np.lib.format.open_memmap(staging / "train_x.npy", "w+", np.float32, shape)
        y = np.empty(clients * samples, dtype=np.int64)
        for c in range(clients):
            split = index.client(c)
            x[c * samples : (c + 1) * samples] = train.read(split.train_rows)
            y[c * samples : (c + 1) * samples] = split.train_labels
        x.flush()
        np.save(staging / "train_y.npy", y)
        np.save(staging / "test_x.npy", test.read(np.arange(len(test))))
        np.save(staging / "test_y.npy", np.asarray(test_labels, dtype=np.int64))

    if not all((target / f"{name}.npy").exists() for name in FILES):
        publish_directory(target, fill)
    return target


def window(times: PeerTimes, overlap: str) -> float:
    """Seconds per round over rounds 2..R, plus round 1's evaluation where simfl's window
    holds it (its evaluation overlaps the next round): the same work as simfl's rounds 2..R."""
    seconds = sum(times.rounds[1:]) + (times.evaluations[0] if overlap != "off" else 0.0)
    return seconds / (len(times.rounds) - 1)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Build the data, run the three phases one after another and collect their figures."""
    import flower_w1 as peers  # this file by its module name, which Flower's actors can import
    import w1_engine_overhead as w1

    from simfl.engine.plan import RunPlan

    train, test, index, test_labels = w1.build_data(
        args.workdir, args.clients, args.samples, args.test_samples
    )
    data_dir = str(export_arrays(args.workdir, train, test, index, test_labels))
    load_before = os.getloadavg()[0]
    bare, bare_peak, _ = w1.in_fresh_process(
        peers.bare_phase, data_dir, args.clients, args.per_round, args.rounds, args.bare_threads
    )
    flower, flower_peak, flower_rss = w1.in_fresh_process(
        peers.flower_phase, data_dir, args.clients, args.per_round, args.rounds, args.client_cpus
    )
    plan = RunPlan(
        w1.scenario(args, args.workdir),
        train.directory,
        test.directory,
        index.directory,
        NUM_CLASSES,
    )
    clock, simfl_peak, simfl_rss = w1.in_fresh_process(
        w1.engine_run, plan, test_labels, np.arange(args.test_samples)
    )
    simfl_rounds = [record.round_seconds for record in clock.rounds]
    simfl_s = float(np.mean(simfl_rounds[1:]))
    bare_s, flower_s = float(np.mean(bare.rounds[1:])), float(np.mean(flower.rounds[1:]))
    return {
        "workload": f"W1: {args.clients} clients x {args.samples} samples, {args.per_round}/round"
        f", {args.rounds} rounds (2-{args.rounds} timed), {args.test_samples} test samples",
        "bare_seconds_per_round": bare_s,
        "flower_seconds_per_round": flower_s,
        "simfl_seconds_per_round": simfl_s,
        "simfl_over_flower": simfl_s / window(flower, clock.overlap),
        "simfl_over_bare": simfl_s / window(bare, clock.overlap),
        "flower_over_bare": flower_s / bare_s,
        "bare_cold_start_s": bare.cold_start,
        "flower_cold_start_s": flower.cold_start,
        "simfl_cold_start_s": clock.cold_start,
        "bare_start_to_round_1_s": bare.cold_start + bare.rounds[0],
        "flower_start_to_round_1_s": flower.cold_start + flower.rounds[0],
        "simfl_start_to_round_1_s": clock.cold_start + simfl_rounds[0],
        "bare_peak_rss_mib": bare_peak / 2**20,
        "flower_peak_rss_mib": flower_peak / 2**20,
        "simfl_peak_rss_mib": simfl_peak / 2**20,
        "bare_rounds_s": " ".join(f"{t:.2f}" for t in bare.rounds),
        "flower_rounds_s": " ".join(f"{t:.2f}" for t in flower.rounds),
        "simfl_rounds_s": " ".join(f"{t:.2f}" for t in simfl_rounds),
        "bare_evaluations_s": " ".join(f"{t:.2f}" for t in bare.evaluations),
        "flower_evaluations_s": " ".join(f"{t:.2f}" for t in flower.evaluations),
        "rounds_run": {
            "bare": len(bare.rounds),
            "flower": len(flower.rounds),
            "simfl": len(simfl_rounds),
        },
        "simfl_central_evaluation": f"overlap {clock.overlap} (resources.evaluation_overlap)",
        "bare_threads": args.bare_threads,
        "client_cpus": args.client_cpus,
        "flower_rss_at_peak_mib": flower_rss,
        "simfl_rss_at_peak_mib": simfl_rss,
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
        # a busy machine slows a multi-threaded loop most: this says whether others ran
        "load_average_1min_before_after": f"{load_before:.2f} {os.getloadavg()[0]:.2f}",
    }


def main() -> None:
    import w1_engine_overhead as w1

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    w1.add_workload_arguments(parser)  # --client-cpus: Flower's clients and simfl's alike
    parser.add_argument("--bare-threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.rounds < 2 or not 0 < args.per_round <= args.clients:
        parser.error("--rounds must be at least 2 and --per-round within 1..--clients")
    figures = measure(args)
    w1.print_figures(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
