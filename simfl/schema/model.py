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
    """Output channels of each conv-ReLU-maxpool block, in order; each block halves both
    spatial sizes, so 40 × 101 log-mels allow at most 5 blocks."""
    kernel_size: int = Field(3, ge=1)
    """Square convolution kernel size, odd (for "same" padding)."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout probability before the linear ``head``; 0: none."""
    normalize_input: bool = True
    """Standardize each clip over all its time-frequency bins (parameter-free, so no statistics
    are shared across clients); false: raw log-mels."""
    freq_bins: int = Field(1, ge=1, le=64)
    """Frequency bins kept by the final pooling, which always pools time to one step: 1 is
    global pooling; more keep the spectral shape and widen the ``head``."""
    time_pool: Literal["avg", "max"] = "avg"
    """Final pooling over time (and frequency down to ``freq_bins``): average or maximum."""
    batch_norm: bool = False
    """Add a BatchNorm2d after each convolution (``features.bn{i}``), the client-local state
    that FedBN and ``strategy.local_batch_norm`` keep on each client."""

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
    """Selects the small keyword-spotting CNN over log-mel features (the reference model)."""

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

    pretrained: str | None = Field(default=None)
    """Hugging Face hub name or local ``save_pretrained`` directory to load with
    ``from_pretrained``; unset: random initialisation from ``config_preset``. If it cannot be
    reached (offline), the run stops before anything is written."""
    config_preset: Literal["whisper-tiny", "test-small"] = "whisper-tiny"
    """Architecture of a randomly initialised model (ignored with ``pretrained``):
    ``whisper-tiny`` has openai/whisper-tiny's dimensions, ``test-small`` is tiny for tests."""
    input_frames: int = Field(default=100, ge=2, le=FULL_FRAMES)
    """10 ms feature frames the encoder reads (even; 100 = 1 s instead of Whisper's 3000): its
    position table is cut to half as many; at most ``data.features.frames``."""
    unfreeze_top_layers: int = Field(default=0, ge=0)
    """Top encoder layers that train (with the final LayerNorm); 0: the encoder is frozen.
    At most the encoder's layers."""
    train_all: bool = False
    """Train every parameter, the whole encoder included (overrides ``unfreeze_top_layers``);
    only trainable parameters travel between server and clients."""
    init_std: float = Field(default=0.02, gt=0.0, le=1.0)
    """Standard deviation of the random initialisation (ignored with ``pretrained``): Whisper's
    0.02 leaves a random encoder's output mostly position embedding, useless as frozen
    features; about 0.1 keeps the clip's content."""

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
    """Selects keyword classification with a Whisper encoder and a small head (1×1 conv over
    encoder positions, then linear); only trainable parameters travel."""
    head_channels: int = Field(default=128, ge=1, le=4096)
    """Output channels of the head's 1×1 convolution over the encoder positions; the linear
    layer after it has ``head_channels`` × d_model inputs."""


class WhisperAsrParams(WhisperParams):
    """``[model] name = "whisper-asr"``: Whisper options plus the transcript length limit."""

    name: Literal["whisper-asr"]
    """Selects speech-to-text with WhisperForConditionalGeneration (greedy decoding, WER and
    CER); needs a transcribed dataset (``data.dataset = "synth-phrases"``)."""
    input_frames: int = Field(default=300, ge=2, le=3000)
    """10 ms feature frames the encoder reads (even; 300 = 3 s, a synth-phrases clip): its
    position table is cut to half as many; at most ``data.features.frames``."""
    max_target_tokens: int = Field(default=16, ge=1, le=400)
    """Most tokens greedy decoding generates per transcript; a randomly initialised decoder
    gets max(64, this + 2) positions."""

    def check_scenario(self, scenario: Scenario) -> None:
        super().check_scenario(scenario)
        if not getattr(scenario.data, "has_transcripts", False):
            raise ValueError(
                f"model 'whisper-asr' needs a transcribed dataset (data.dataset = "
                f'"synth-phrases"), got {scenario.data.dataset!r}'
            )
