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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from simfl.errors import ScenarioError

#: Whisper's own input: 30 s of 10 ms frames.
FULL_FRAMES = 3000

#: Offline presets. "whisper-tiny" has openai/whisper-tiny's real dimensions; "test-small" is
#: small enough for unit tests and CPU end-to-end runs.
PRESETS: dict[str, dict[str, int]] = {
    "whisper-tiny": {
        "d_model": 384,
        "encoder_layers": 4,
        "decoder_layers": 4,
        "encoder_attention_heads": 6,
        "decoder_attention_heads": 6,
        "encoder_ffn_dim": 1536,
        "decoder_ffn_dim": 1536,
        "num_mel_bins": 80,
    },
    "test-small": {
        "d_model": 32,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 64,
        "num_mel_bins": 80,
    },
}


class WhisperParams(BaseModel):
    """``[model]`` keys every Whisper model accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pretrained: str | None = Field(
        default=None, description="hub name or local path; loaded with from_pretrained"
    )
    config_preset: Literal["whisper-tiny", "test-small"] = "whisper-tiny"
    input_frames: int = Field(default=100, ge=2, le=FULL_FRAMES)
    unfreeze_top_layers: int = Field(default=0, ge=0)
    train_all: bool = False
    # Random init only: Whisper's 0.02 leaves a random encoder's output ~98% position embedding,
    # useless as frozen features; ~0.1 keeps the clip's content (see scenarios/whisper-kws.toml).
    init_std: float = Field(default=0.02, gt=0.0, le=1.0)

    @field_validator("input_frames")
    @classmethod
    def _even_frames(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"input_frames must be even (the encoder halves it), got {value}")
        return value

    @field_validator("pretrained")
    @classmethod
    def _non_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("pretrained must be a model name or path (omit it for random init)")
        return value

    @property
    def positions(self) -> int:
        """Encoder positions for ``input_frames`` (the second convolution has stride 2)."""
        return self.input_frames // 2

    def init_description(self) -> str:
        """What the run summary says about where the weights came from."""
        if self.pretrained:
            return f"pretrained {self.pretrained}"
        return f"random (preset {self.config_preset})"

    def check_scenario(self, scenario: Any) -> None:
        """Cross-table checks, called by the Scenario validator (one-line ValueErrors)."""
        self.check_features(scenario.data.features)

    def check_features(self, features: Any) -> None:
        """The cached features must be Whisper log-mels with at least ``input_frames`` frames."""
        if getattr(features, "kind", "log-mel") != "whisper":
            raise ValueError('Whisper models need data.features.kind = "whisper"')
        if features.n_mels != 80:
            raise ValueError(
                f"Whisper presets take 80 mel bins (data.features.n_mels), got {features.n_mels}"
            )
        if features.frames < self.input_frames:
            raise ValueError(
                f"model.input_frames ({self.input_frames}) exceeds data.features.frames "
                f"({features.frames})"
            )


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
