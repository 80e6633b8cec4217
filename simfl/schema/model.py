"""``[model]``: which model and its architecture; one class per model, ``name`` the tag.

The builders live in :mod:`simfl.models` and import torch; these classes import only pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from simfl.schema.base import Section

if TYPE_CHECKING:
    from simfl.config import Scenario


class KwsCnnParams(Section):
    """Architecture of :class:`KwsCnn`; one conv-ReLU-maxpool block per ``channels`` entry."""

    channels: list[int] = Field(default_factory=lambda: [16, 32], min_length=1)
    kernel_size: int = Field(3, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    normalize_input: bool = True
    freq_bins: int = Field(1, ge=1, le=64)
    time_pool: Literal["avg", "max"] = "avg"
    batch_norm: bool = False

    @field_validator("channels")
    @classmethod
    def _positive_channels(cls, value: list[int]) -> list[int]:
        if any(c <= 0 for c in value):
            raise ValueError(f"channels must be positive, got {value}")
        return value

    @field_validator("kernel_size")
    @classmethod
    def _odd_kernel(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel_size must be odd (for 'same' padding), got {value}")
        return value


class KwsCnnConfig(KwsCnnParams):
    """``[model] name = "kws-cnn"`` plus the CNN's own parameters."""

    name: Literal["kws-cnn"]

    @property
    def has_batch_norm(self) -> bool:
        return self.batch_norm

    def init_description(self) -> str:
        """How the model's weights start, for the run's summary."""
        return "random (seeded)"


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


class WhisperParams(Section):
    """``[model]`` keys every Whisper model accepts."""

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

    @property
    def has_batch_norm(self) -> bool:
        return False  # Whisper normalizes with LayerNorm

    def init_description(self) -> str:
        """What the run summary says about where the weights came from."""
        if self.pretrained:
            return f"pretrained {self.pretrained}"
        return f"random (preset {self.config_preset})"

    def check_scenario(self, scenario: Scenario) -> None:
        """Whisper models read Whisper log-mels (see :class:`~simfl.schema.base.CrossTableRule`)."""
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


class WhisperKwsParams(WhisperParams):
    """``[model] name = "whisper-kws"``: encoder source and size, head width, what trains."""

    name: Literal["whisper-kws"]
    head_channels: int = Field(default=128, ge=1, le=4096)


class WhisperAsrParams(WhisperParams):
    """``[model] name = "whisper-asr"``: Whisper options plus the transcript length limit."""

    name: Literal["whisper-asr"]
    input_frames: int = Field(default=300, ge=2, le=3000)
    max_target_tokens: int = Field(default=16, ge=1, le=400)

    def check_scenario(self, scenario: Scenario) -> None:
        super().check_scenario(scenario)
        if not getattr(scenario.data, "has_transcripts", False):
            raise ValueError(
                f"model 'whisper-asr' needs a transcribed dataset (data.dataset = "
                f'"synth-phrases"), got {scenario.data.dataset!r}'
            )
