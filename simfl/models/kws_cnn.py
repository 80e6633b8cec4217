"""Small keyword-spotting CNN over log-mel features (the benchmark reference model).

No BatchNorm by default: its running statistics are client-local state that federated
averaging handles badly. Inputs are instead normalized per clip, which needs no statistics
shared across clients. ``batch_norm = true`` adds one BatchNorm2d per block (``features.bn{i}``),
the variant FedBN keeps local to each client.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from simfl.schema.model import KwsCnnParams


class PerUtteranceNorm(nn.Module):
    """Parameter-free: standardize each clip over all of its time-frequency bins."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, x.ndim))
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, keepdim=True, unbiased=False)
        return (x - mean) * torch.rsqrt(var + self.eps)


def _conv_blocks(channels: list[int], kernel_size: int, batch_norm: bool) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    in_ch = 1
    for i, out_ch in enumerate(channels, start=1):
        layers[f"conv{i}"] = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)
        if batch_norm:
            layers[f"bn{i}"] = nn.BatchNorm2d(out_ch)
        layers[f"relu{i}"] = nn.ReLU()
        layers[f"pool{i}"] = nn.MaxPool2d(2)
        in_ch = out_ch
    return nn.Sequential(layers)


def _final_pool(freq_bins: int, time_pool: str) -> nn.Module:
    """Pool the whole time axis (a keyword can sit anywhere in the clip) down to one step.

    ``freq_bins=1`` with ``"avg"`` is global average pooling (the W1 reference architecture);
    keeping a few frequency bins keeps the spectral shape that global pooling averages away.
    """
    if time_pool == "max":
        return nn.AdaptiveMaxPool2d((freq_bins, 1))
    return nn.AdaptiveAvgPool2d((freq_bins, 1))


class KwsCnn(nn.Module):
    """Conv blocks -> global average pool -> (dropout) -> linear ``head``.

    Input [B, 1, n_mels, frames] or [B, n_mels, frames]; output logits [B, num_classes].
    Parameter names are ``features.conv{i}.{weight,bias}`` (``features.bn{i}.*`` with
    ``batch_norm``) and ``head.{weight,bias}``, so
    personalization can select the classifier with the pattern ``"head"``. Each block
    halves both spatial sizes, so 40 x 101 inputs allow at most 5 blocks.
    """

    def __init__(self, params: KwsCnnParams, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.params = params
        self.num_classes = num_classes
        self.normalize: nn.Module = PerUtteranceNorm() if params.normalize_input else nn.Identity()
        self.features = _conv_blocks(params.channels, params.kernel_size, params.batch_norm)
        self.pool = _final_pool(params.freq_bins, params.time_pool)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(params.dropout)
        self.head = nn.Linear(params.channels[-1] * params.freq_bins, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(
                f"expected [B, 1, n_mels, frames] or [B, n_mels, frames], got {tuple(x.shape)}"
            )
        x = self.normalize(x)
        x = self.features(x)
        x = self.flatten(self.pool(x))
        return self.head(self.dropout(x))


def build_kws_cnn(params: KwsCnnParams, num_classes: int) -> KwsCnn:
    """Build the KWS CNN for ``num_classes`` keywords."""
    return KwsCnn(params, num_classes)
