"""``whisper-asr``: WhisperForConditionalGeneration fine-tuned on transcribed short clips.

Why: speech-to-text is the other half of federated Whisper. The model shares whisper-kws's
construction (:mod:`simfl.models.whisper_common`): offline presets with a vocabulary from the
local transcript tokenizer, or a pretrained checkpoint (its own vocabulary); the encoder cut to
``input_frames`` (3 s = 300 frames by default) and frozen unless ``train_all`` or
``unfreeze_top_layers`` say otherwise. The decoder always trains.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from simfl.models.tokenizer import word_tokenizer
from simfl.models.whisper_common import (
    crop_frames,
    freeze_encoder,
    load_pretrained,
    shorten_encoder,
    whisper_config,
)
from simfl.schema.model import WhisperAsrParams


class WhisperAsr(nn.Module):
    """Whisper seq2seq on cropped log-mels: ``forward`` gives the loss, ``transcribe`` tokens."""

    def __init__(self, params: WhisperAsrParams, tokenizer: Any) -> None:
        super().__init__()
        from transformers import WhisperForConditionalGeneration

        self.params = params
        if params.pretrained:
            self.whisper = load_pretrained(WhisperForConditionalGeneration, params.pretrained)
            shorten_encoder(self.whisper.model.encoder, params.positions)
        else:
            config = whisper_config(
                params,
                vocab_size=len(tokenizer),
                pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                decoder_start_token_id=tokenizer.bos_token_id,
                max_target_positions=max(64, params.max_target_tokens + 2),
            )
            self.whisper = WhisperForConditionalGeneration(config)
            self._plain_generation()
        freeze_encoder(self.whisper.model.encoder, params)

    def _plain_generation(self) -> None:
        """Greedy decoding with no Whisper language/task/timestamp prompt (a local vocabulary)."""
        generation = self.whisper.generation_config
        config = self.whisper.config
        generation.decoder_start_token_id = config.decoder_start_token_id
        generation.eos_token_id = config.eos_token_id
        generation.pad_token_id = config.pad_token_id
        generation.bos_token_id = config.bos_token_id
        generation.suppress_tokens = None
        generation.begin_suppress_tokens = None
        generation.forced_decoder_ids = None
        generation.max_length = None

    @property
    def decoder_start_token_id(self) -> int:
        return int(self.whisper.config.decoder_start_token_id)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> Any:
        """Seq2Seq output; with ``labels`` (-100 padded) its ``loss`` is the cross-entropy."""
        x = crop_frames(x, self.params.input_frames)
        return self.whisper(input_features=x, labels=labels)

    @torch.no_grad()
    def transcribe(self, x: torch.Tensor) -> torch.Tensor:
        """Greedy ``generate``: token ids [B, <= max_target_tokens]."""
        x = crop_frames(x, self.params.input_frames)
        return self.whisper.generate(
            x, max_new_tokens=self.params.max_target_tokens, do_sample=False, num_beams=1
        )


def build_whisper_asr(params: WhisperAsrParams, tokenizer: Any | None) -> WhisperAsr:
    """Build whisper-asr; ``tokenizer`` None gives a placeholder vocabulary (validation only)."""
    return WhisperAsr(params, tokenizer if tokenizer is not None else word_tokenizer(["a"]))
