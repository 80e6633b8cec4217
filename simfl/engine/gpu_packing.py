"""How many clients share one GPU: a measured probe, not Ray's scheduling label alone.

``resources.num_gpus = 0.25`` only tells Ray to put four client actors on each GPU; nothing
checks that four clients fit in its memory, and "CUDA out of memory with many clients per
GPU" is the failure Flower users report most. Before a GPU run simfl therefore

1. refuses it in one line if torch sees no CUDA device (:func:`require_cuda`);
2. measures one client's peak GPU memory with a real probe step: the run's model, one
   training step on the largest client's first batch and one evaluation batch, through the
   very loops clients run (``train_epochs`` / ``evaluate``, same precision), read with
   ``torch.cuda.max_memory_allocated`` (:func:`measure_client_peak`);
3. caps the clients per GPU so that each one's peak, a margin and its own CUDA context fit in
   ``resources.gpu_memory_gib`` (default: the device's memory), by raising the fraction of a
   GPU each client asks Ray for (:func:`plan_packing`). Results do not change: replies are
   aggregated in partition order whatever the concurrency.

Without CUDA (GPUs only declared to Ray, as tests do) a GPU's memory cannot be measured; the
packing then follows ``num_gpus`` and says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from simfl.errors import ScenarioError

if TYPE_CHECKING:
    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan
    from simfl.schema.sections import ResourcesConfig

GIB = 2**30
#: Each client actor is its own process with its own CUDA context (driver state and kernel
#: images), which ``max_memory_allocated`` does not count: about 0.3-0.6 GiB on current GPUs.
CUDA_CONTEXT_BYTES = GIB // 2
#: Head room on top of the measured peak (allocator fragmentation, batches of other sizes).
MARGIN = 0.2
#: Ray keeps fractional resources to 4 decimals; at most this many clients per GPU are planned
#: so that ``floor(1e4 / k) / 1e4`` still packs exactly k per GPU.
MAX_CLIENTS_PER_GPU = 99


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def require_cuda(scenario: Scenario) -> None:
    """A real run that asks for GPUs needs CUDA here: refuse it before anything is written."""
    num_gpus = scenario.resources.num_gpus
    if num_gpus > 0 and not cuda_available():
        import torch

        raise ScenarioError(
            f"{num_gpus:g} GPU per client asked, but torch {torch.__version__} sees no CUDA "
            "device on this machine; set resources.num_gpus = 0 or run where CUDA is available",
            key="resources.num_gpus",
            source=scenario.source,
        )


@dataclass(frozen=True)
class GpuPacking:
    """The packing decided for a run, as reported in ``summary.json`` and on the console."""

    num_gpus_asked: float  # per client, from the scenario
    num_gpus: float  # per client, as given to Ray (larger than asked when capped)
    clients_per_gpu_asked: int
    clients_per_gpu: int
    client_peak_bytes: int | None  # measured; None without CUDA
    client_need_bytes: int | None  # peak + margin + one CUDA context
    budget_bytes: int | None  # per GPU
    measured_on: str  # the device name, or why nothing was measured

    @property
    def capped(self) -> bool:
        return self.clients_per_gpu < self.clients_per_gpu_asked

    def line(self) -> str:
        """One line: the estimate and the cap."""
        asked = f"num_gpus {self.num_gpus_asked:g} packs {self.clients_per_gpu_asked} clients/GPU"
        if self.client_peak_bytes is None:
            stated = self.budget_bytes and f", budget {self.budget_bytes / GIB:g} GiB per GPU"
            return (
                f"{asked}; one client's peak GPU memory cannot be measured "
                f"({self.measured_on}){stated or ''}"
            )
        measured = (
            f"one client's peak GPU memory {self.client_peak_bytes / GIB:.2f} GiB measured on "
            f"{self.measured_on} ({self.client_need_bytes / GIB:.2f} GiB with margin and CUDA "
            f"context), budget {self.budget_bytes / GIB:.1f} GiB per GPU"
        )
        if self.capped:
            return (
                f"{asked}; {measured}: capped to {self.clients_per_gpu} clients/GPU "
                f"(num_gpus {self.num_gpus:g} per client)"
            )
        return f"{asked}; {measured}: all fit"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "capped": self.capped}


def clients_per_gpu(num_gpus: float) -> int:
    """How many actors Ray places on one GPU at ``num_gpus`` each."""
    return int(math.floor(1 / num_gpus + 1e-9))


def plan_packing(
    num_gpus: float,
    client_peak_bytes: int | None,
    budget_bytes: int | None,
    measured_on: str,
) -> GpuPacking:
    """Clients per GPU within ``budget_bytes`` given one client's measured peak.

    Raises ``ScenarioError`` (key ``resources.gpu_memory_gib``) when not even one client fits.
    """
    asked = clients_per_gpu(num_gpus)
    if client_peak_bytes is None or budget_bytes is None:
        return GpuPacking(num_gpus, num_gpus, asked, asked, None, None, budget_bytes, measured_on)
    need = int(client_peak_bytes * (1 + MARGIN)) + CUDA_CONTEXT_BYTES
    fit = min(budget_bytes // need, MAX_CLIENTS_PER_GPU)
    if fit < 1:
        raise ScenarioError(
            f"one client needs {need / GIB:.2f} GiB of GPU memory (peak "
            f"{client_peak_bytes / GIB:.2f} GiB measured on {measured_on}, plus margin and CUDA "
            f"context), more than the {budget_bytes / GIB:g} GiB budget per GPU; lower "
            'train.batch_size, use train.precision = "bf16" or give a larger budget',
            key="resources.gpu_memory_gib",
        )
    if fit >= asked:
        return GpuPacking(
            num_gpus, num_gpus, asked, asked, client_peak_bytes, need, budget_bytes, measured_on
        )
    capped = math.floor(1e4 / fit) / 1e4  # Ray's 4-decimal resolution: still exactly `fit`
    return GpuPacking(
        num_gpus, capped, asked, int(fit), client_peak_bytes, need, budget_bytes, measured_on
    )


def measure_client_peak(plan: RunPlan) -> tuple[int, str, int]:
    """One client's peak GPU memory in bytes, the device's name and its total memory.

    Runs the client's own loops on this process's first CUDA device: one training step on
    ``train.batch_size`` rows and one evaluation batch of ``train.eval_batch_size`` rows,
    from the client with the most rows, at the run's precision.
    """
    import torch

    from simfl.data.client_index import ClientIndex
    from simfl.data.feature_store import FeatureStore
    from simfl.training import evaluate, train_epochs

    device = torch.device("cuda", 0)
    train = plan.scenario.train
    index, store = ClientIndex(plan.index_dir), FeatureStore.open(plan.train_store)
    largest = max(
        (index.client(c) for c in range(index.num_clients)), key=lambda s: len(s.train_rows)
    )
    task = plan.task()

    def tensors(rows: Any, labels: Any, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows, labels = rows[:size], labels[:size]
        return torch.from_numpy(store.read(rows)), torch.from_numpy(labels.astype("int64"))

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    model = plan.initial_model().to(device)
    x, y = tensors(largest.train_rows, largest.train_labels, train.batch_size)
    train_epochs(model, x, y, train.model_copy(update={"local_epochs": 1}), seed=0, task=task)
    rows = largest.test_rows if len(largest.test_rows) else largest.train_rows
    labels = largest.test_labels if len(largest.test_rows) else largest.train_labels
    x, y = tensors(rows, labels, train.eval_batch_size)
    evaluate(model, x, y, train.eval_batch_size, task, train.precision)
    peak = torch.cuda.max_memory_allocated(device) - before
    del model, x, y
    torch.cuda.empty_cache()
    properties = torch.cuda.get_device_properties(device)
    return int(peak), properties.name, int(properties.total_memory)


def pack_clients(plan: RunPlan) -> tuple[ResourcesConfig, GpuPacking | None]:
    """The ``client_resources`` to give Ray for ``plan`` and the packing decided (GPU runs)."""
    resources = plan.scenario.resources
    if resources.num_gpus <= 0:
        return resources, None
    budget = int(resources.gpu_memory_gib * GIB) if resources.gpu_memory_gib else None
    if cuda_available():
        peak, name, total = measure_client_peak(plan)
        packing = plan_packing(resources.num_gpus, peak, budget or total, name)
    else:
        packing = plan_packing(resources.num_gpus, None, budget, "no CUDA device in this process")
    if packing.num_gpus != resources.num_gpus:
        resources = resources.model_copy(update={"num_gpus": packing.num_gpus})
    return resources, packing
