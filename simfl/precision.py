"""Mixed precision for local training and evaluation: ``[train] precision``.

torch.amp does the work (autocast picks per-op dtypes, ``GradScaler`` keeps fp16 gradients
from underflowing); what this module adds is the mapping from the scenario's word to those
objects, and the guarantee that ``"fp32"`` changes nothing: no autocast context and a disabled
scaler, so fp32 runs execute exactly the operations of a plain training loop and give
bit-identical results.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The forward pass's context: nothing for fp32, else torch's autocast on ``device``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for fp16 only; disabled (``scale`` and ``step`` pass through) otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
