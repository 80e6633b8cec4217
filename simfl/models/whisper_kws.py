"""``whisper-kws``: a Whisper encoder plus a small classification head, as in Flower's example.

Why: Flower's federated Whisper example freezes whisper-tiny's encoder and trains only a head
(a 1x1 convolution over encoder positions, then a linear layer), so each client sends ~0.6 M
parameters instead of ~8 M. Here the encoder is cut to ``input_frames`` (1 s clips need 100
frames, not Whisper's 3000) and can be pretrained (``pretrained``) or randomly initialised
offline (``config_preset``).
"""

from __future__ import annotations

import torch
from torch import nn

from simfl.models.whisper_common import (
    WhisperParams,
    crop_frames,
    freeze_encoder,
    load_pretrained,
    shorten_encoder,
    whisper_config,
)
from simfl.schema.model import WhisperKwsParams


def build_encoder(params: WhisperParams) -> nn.Module:
    """The (pretrained or random) Whisper encoder for ``params.input_frames`` frames."""
    from transformers import WhisperForConditionalGeneration
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    if params.pretrained:
        full = load_pretrained(WhisperForConditionalGeneration, params.pretrained)
        encoder = full.get_encoder()
        shorten_encoder(encoder, params.positions)
    else:
        encoder = WhisperEncoder(whisper_config(params))
    freeze_encoder(encoder, params)
    return encoder


class WhisperKws(nn.Module):
    """Encoder -> Conv1d(positions -> head_channels, 1) -> ReLU -> flatten -> ``head.linear``.

    Input [B, 80, T >= input_frames] Whisper log-mels; output logits [B, num_classes]. The head's
    parameters are named ``head.*`` so FedPer's ``"head"`` pattern selects them.
    """

    def __init__(self, params: WhisperKwsParams, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.params = params
        self.encoder = build_encoder(params)
        d_model = self.encoder.config.d_model
        self.head = nn.Sequential()
        self.head.add_module("conv", nn.Conv1d(params.positions, params.head_channels, 1))
        self.head.add_module("relu", nn.ReLU())
        self.head.add_module("flatten", nn.Flatten(1))
        self.head.add_module("linear", nn.Linear(params.head_channels * d_model, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = crop_frames(x, self.params.input_frames)
        hidden = self.encoder(input_features=x).last_hidden_state  # [B, positions, d_model]
        return self.head(hidden)


def build_whisper_kws(params: WhisperKwsParams, num_classes: int) -> WhisperKws:
    """Build the Whisper keyword classifier for ``num_classes`` keywords."""
    return WhisperKws(params, num_classes)
