"""What every Whisper-based model shares: sizes, pretrained loading, short inputs, freezing.

Why one module: the keyword classifier (:mod:`simfl.models.whisper_kws`) and the speech-to-text
model (:mod:`simfl.models.whisper_asr`) must agree on how a Whisper is built offline (a preset
of real or tiny dimensions, randomly initialised under the caller's torch seed), how
pretrained weights are loaded (``from_pretrained``, one clear error when unreachable), how the
encoder is cut down to short clips (``input_frames``) and which parameters are frozen (those
never travel in Flower messages).
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from simfl.errors import ScenarioError
from simfl.schema.model import PRESETS, WhisperParams


def whisper_config(params: WhisperParams, **extra: Any) -> Any:
    """A WhisperConfig of the preset's dimensions with ``positions`` encoder positions."""
    from transformers import WhisperConfig

    return WhisperConfig(
        **PRESETS[params.config_preset],
        max_source_positions=params.positions,
        init_std=params.init_std,
        suppress_tokens=None,
        begin_suppress_tokens=None,
        **extra,
    )


def load_pretrained(cls: Any, name: str, **kwargs: Any) -> Any:
    """``cls.from_pretrained(name)``, or one ScenarioError naming the key when unreachable."""
    try:
        return cls.from_pretrained(name, **kwargs)
    except (OSError, ValueError, RuntimeError) as error:  # hub offline, no such repo or path
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ScenarioError(
            f"key 'model.pretrained': cannot load {name!r} ({reason}); give a local directory "
            "saved with save_pretrained, or drop model.pretrained to use model.config_preset "
            "(random initialisation, offline)"
        ) from None


def shorten_encoder(encoder: nn.Module, positions: int) -> None:
    """Keep the first ``positions`` position embeddings so the encoder takes short clips.

    Whisper's sinusoidal table depends only on the position, so slicing a pretrained table
    gives exactly what a short model would have had; the embeddings stay frozen, as in Whisper.
    """
    table = encoder.embed_positions.weight
    if positions > table.shape[0]:
        raise ScenarioError(
            f"key 'model.input_frames': {2 * positions} frames exceed the checkpoint's "
            f"{2 * table.shape[0]}"
        )
    encoder.embed_positions = nn.Embedding.from_pretrained(table[:positions].detach().clone())
    encoder.config = copy.deepcopy(encoder.config)
    encoder.config.max_source_positions = positions
    encoder.max_source_positions = positions


def freeze_encoder(encoder: nn.Module, params: WhisperParams) -> None:
    """Freeze the encoder except its top ``unfreeze_top_layers`` layers (all with train_all).

    Unfreezing any layer also unfreezes the final LayerNorm that sits on top of it. Position
    embeddings are never trained (Whisper's are fixed sinusoids).
    """
    if params.train_all:
        return
    encoder.requires_grad_(False)
    layers = list(encoder.layers)
    if params.unfreeze_top_layers > len(layers):
        raise ScenarioError(
            f"key 'model.unfreeze_top_layers': {params.unfreeze_top_layers} exceeds the "
            f"encoder's {len(layers)} layers; allowed 0..{len(layers)}"
        )
    if params.unfreeze_top_layers:
        for layer in layers[len(layers) - params.unfreeze_top_layers :]:
            layer.requires_grad_(True)
        encoder.layer_norm.requires_grad_(True)


def crop_frames(features: Any, frames: int) -> Any:
    """[B, n_mels, T] -> [B, n_mels, frames]; refuses clips shorter than the model expects."""
    if features.ndim != 3:
        raise ValueError(f"expected [B, n_mels, frames], got {tuple(features.shape)}")
    if features.shape[-1] < frames:
        raise ValueError(f"inputs have {features.shape[-1]} frames, the model needs {frames}")
    return features[..., :frames]
