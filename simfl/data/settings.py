"""The data settings schema: what a scenario's ``[data]`` section may say about data and features.

Why a module of its own: validating a scenario must not load torch, ``datasets`` or pandas
(the CLI validates before it builds anything, and Ray workers re-import the schema by name), so
the pydantic models live here with the constants they need and import only the standard library,
pydantic and other standard-library-only simfl modules. Validators check values, never the file
system: whether a local copy is where ``path`` says is checked when the data is prepared
(``check_local_copy`` of :mod:`simfl.data.local_settings`).

Each model's ``cache_key()`` names the cache directory of what it builds; the strings must not
change for unchanged settings, or every user's caches would be rebuilt.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simfl.data.clip_format import SAMPLE_RATE, SPEECH_COMMANDS_WORDS

#: Label views of keyword datasets (see :mod:`simfl.data.views`).
VIEWS = ("35-class", "12-class")
#: Transcribed datasets' view: every distinct text is a class whose name is the text.
TRANSCRIPT_VIEW = "transcripts"


def short_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------- features

#: Bump when the feature computation changes, so stale caches get a new key.
FEATURE_VERSION = 1

#: Whisper's front end (WhisperFeatureExtractor's defaults): 25 ms windows, 10 ms hop, 16 kHz.
WHISPER_DEFAULTS: dict[str, Any] = {
    "n_mels": 80,
    "n_fft": 400,
    "win_length": 400,
    "hop_length": 160,
    "f_min": 0.0,
    "f_max": 8000.0,
    "sample_rate": 16000,
    "frames": 100,
}


class FeatureSettings(BaseModel):
    """Log-mel parameters; defaults are 40 mels, 30 ms windows, 10 ms hop at 16 kHz.

    ``kind = "whisper"`` computes Whisper's own normalized log-mels with transformers'
    ``WhisperFeatureExtractor`` (built offline, no hub) over the first ``frames`` 10 ms frames
    (100 = 1 s) instead of Whisper's 30 s window; unset keys take Whisper's values
    (:data:`WHISPER_DEFAULTS`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    kind: Literal["log-mel", "whisper"] = "log-mel"
    """``log-mel``: log(mel power + 1e-6) of a centered STFT with HTK mel filters, for the KWS
    CNN; ``whisper``: Whisper's normalized log-mels, required by the Whisper models."""
    frames: int | None = Field(None, ge=2, le=3000)
    """``kind = "whisper"`` only: 10 ms frames kept per clip (100 = 1 s, unset: 100) instead of
    Whisper's 3000; must stay unset for log-mel features."""
    n_mels: int = Field(40, gt=0)
    """Mel bands; ``kind = "whisper"`` takes 80 or 128 (default 80, the Whisper models' input)."""
    n_fft: int = Field(480, gt=0)
    """FFT size in samples (480 = 30 ms at 16 kHz); fixed to 400 for Whisper features."""
    win_length: int = Field(480, gt=0)
    """Hann window length in samples, at most ``n_fft``; fixed to 400 for Whisper features."""
    hop_length: int = Field(160, gt=0)
    """Samples between frames (160 = 10 ms at 16 kHz): a log-mel clip has 1 + samples //
    hop_length frames; fixed to 160 for Whisper features."""
    f_min: float = Field(20.0, ge=0.0)
    """Lowest frequency of the mel filters (Hz), below ``f_max``; fixed to 0 for Whisper."""
    f_max: float = Field(7600.0, gt=0.0)
    """Highest frequency of the mel filters (Hz), at most ``sample_rate / 2``; fixed to 8000 for
    Whisper. Every mel filter must cover an FFT bin."""
    sample_rate: int = Field(16000, gt=0)
    """Sample rate (Hz) the filters and the acoustic effects assume; every dataset's clips are
    16 kHz, so leave it at 16000."""
    dtype: Literal["float16", "float32"] = "float16"
    """Storage type of the cached features: ``float16`` halves the cache and its memory map,
    ``float32`` keeps full precision."""

    @model_validator(mode="before")
    @classmethod
    def _whisper_defaults(cls, data: Any) -> Any:
        """Whisper features default to Whisper's front end, not to the KWS log-mel one."""
        if isinstance(data, dict) and data.get("kind") == "whisper":
            return {**WHISPER_DEFAULTS, **data}
        return data

    @model_validator(mode="after")
    def _check_consistency(self) -> FeatureSettings:
        if self.kind == "whisper":
            return self._check_whisper()
        if self.frames is not None:
            raise ValueError('frames applies to kind = "whisper" only')
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        if self.f_max > self.sample_rate / 2:
            raise ValueError(f"f_max ({self.f_max}) must be <= sample_rate/2")
        if self.f_min >= self.f_max:
            raise ValueError(f"f_min ({self.f_min}) must be < f_max ({self.f_max})")
        empty = empty_mel_filters(self)
        if empty:
            raise ValueError(
                f"mel filters {empty} cover no FFT bin; use fewer n_mels or larger n_fft"
            )
        return self

    def _check_whisper(self) -> FeatureSettings:
        """WhisperFeatureExtractor fixes everything but the mel count and the kept frames."""
        fixed = {k: v for k, v in WHISPER_DEFAULTS.items() if k not in ("n_mels", "frames")}
        changed = [k for k, v in fixed.items() if getattr(self, k) != v]
        if changed:
            raise ValueError(
                f'kind = "whisper" fixes {", ".join(changed)} to Whisper\'s values '
                f"({', '.join(f'{k}={fixed[k]}' for k in changed)}); leave them out"
            )
        if self.n_mels not in (80, 128):
            raise ValueError(f'kind = "whisper" takes n_mels 80 or 128, got {self.n_mels}')
        return self

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        """Frames per clip: the centered STFT's count, or ``frames`` for Whisper features."""
        if self.kind == "whisper":
            return int(self.frames)  # type: ignore[arg-type]
        return 1 + num_samples // self.hop_length

    def cache_key(self) -> str:
        """Short stable hash of the settings and FEATURE_VERSION, for cache directory names.

        ``kind`` and ``frames`` enter the key only for Whisper features, so the keys (and
        caches) of log-mel settings are those from before Whisper features existed.
        """
        settings = self.model_dump(mode="json")
        if self.kind == "log-mel":
            del settings["kind"], settings["frames"]
        return short_hash({"feature_version": FEATURE_VERSION, **settings})


def empty_mel_filters(settings: FeatureSettings) -> list[int]:
    """Indices of the triangular HTK-mel filters that cover no FFT bin.

    Filter ``m`` is non-zero exactly at the bins strictly between mel points ``m`` and ``m + 2``;
    the points are computed with the same floating-point steps as the filterbank
    (:func:`simfl.data.logmel.mel_filterbank`), in plain Python so validation needs no numpy.
    """
    low, high = _hz_to_mel(settings.f_min), _hz_to_mel(settings.f_max)
    mel_points = _linspace(low, high, settings.n_mels + 2)
    hz_points = [700.0 * (10.0 ** (mel / 2595.0) - 1.0) for mel in mel_points]
    bins = _linspace(0.0, float(settings.sample_rate // 2), settings.n_freqs)  # ascending
    empty = []
    for m in range(settings.n_mels):
        first_above = bisect.bisect_right(bins, hz_points[m])
        if first_above == len(bins) or not bins[first_above] < hz_points[m + 2]:
            empty.append(m)
    return empty


def _hz_to_mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def _linspace(start: float, stop: float, num: int) -> list[float]:
    """``numpy.linspace(start, stop, num)`` value for value (i * step + start, exact stop)."""
    if num == 1:
        return [start]
    step = (stop - start) / (num - 1)
    return [i * step + start for i in range(num - 1)] + [stop]


# ---------------------------------------------------------------------------- synth-commands

#: Bump whenever the generated audio or metadata would change: it is part of every cache key.
SYNTH_COMMANDS_GENERATOR_VERSION = 1
MAX_CLIPS = 150_000  # ~4.8 GB of int16 audio, about 1.4x the real Speech Commands v0.02


def num_test_speakers(num_speakers: int, fraction: float) -> int:
    return int(round(num_speakers * fraction))


# Field types both synthetic generators share (their defaults differ).
NumSpeakers = Annotated[int, Field(ge=2, le=2000)]
TakesPerSpeaker = Annotated[int, Field(ge=1, le=10)]
TestSpeakerFraction = Annotated[float, Field(gt=0.0, lt=1.0)]
SnrDb = Annotated[float, Field(ge=-10.0, le=60.0)]
GeneratorSeed = Annotated[int, Field(ge=0, le=2**32 - 1)]


def check_speakers_and_snr(
    num_speakers: int, test_speaker_fraction: float, snr_db_min: float, snr_db_max: float
) -> None:
    """The cross-field rules of a synthetic generator's speakers and noise (ValueError)."""
    if snr_db_min > snr_db_max:
        raise ValueError("snr_db_min must be <= snr_db_max")
    if not 1 <= num_test_speakers(num_speakers, test_speaker_fraction) < num_speakers:
        raise ValueError("test_speaker_fraction must leave >= 1 train and >= 1 test speaker")


class SynthCommandsSettings(BaseModel):
    """Everything that determines the generated dataset (and therefore its cache key)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    words: tuple[str, ...] = Field(default=SPEECH_COMMANDS_WORDS, min_length=1, max_length=200)
    """Words to synthesize, unique, lowercase ASCII letters; default: Speech Commands v0.02's 35
    words. In the 12-class view every word outside the ten commands is ``_unknown_``."""
    num_speakers: NumSpeakers = 120
    """Synthetic speakers, each a seeded eSpeak NG voice with its own accent, pitch, rate,
    spectral tilt and background noise."""
    takes_per_speaker: TakesPerSpeaker = 2
    """Clips each speaker records of every word, each take with its own offset and SNR."""
    silence_clips_per_speaker: int = Field(default=2, ge=0, le=20)
    """Noise-only clips (label ``_silence_``) per speaker; 0: no silence class."""
    test_speaker_fraction: TestSpeakerFraction = 0.2
    """Share of the speakers held out (seeded) for the test split; it must leave at least one
    train and one test speaker."""
    snr_db_min: SnrDb = 5.0
    """Lowest signal-to-noise ratio (dB) of the speech over its background noise; each clip's
    SNR is drawn uniformly from [``snr_db_min``, ``snr_db_max``]."""
    snr_db_max: SnrDb = 30.0
    """Highest signal-to-noise ratio (dB) of a clip, at least ``snr_db_min``."""
    seed: GeneratorSeed = 0
    """Seed of the generated dataset (voices, held-out speakers, clip draws), independent of
    ``scenario.seed``: a new value builds a new cached dataset."""

    @field_validator("words")
    @classmethod
    def _check_words(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(words)) != len(words):
            raise ValueError("words must be unique")
        bad = [w for w in words if not (w.isascii() and w.isalpha() and w.islower())]
        if bad:
            raise ValueError(f"words must be lowercase ASCII letters, got {bad}")
        return words

    @model_validator(mode="after")
    def _check_ranges(self) -> Self:
        check_speakers_and_snr(
            self.num_speakers, self.test_speaker_fraction, self.snr_db_min, self.snr_db_max
        )
        if self.num_speakers * self.clips_per_speaker > MAX_CLIPS:
            raise ValueError(f"at most {MAX_CLIPS} clips: the build holds them all in memory")
        return self

    def cache_key(self) -> str:
        """Short stable hash of the settings and the generator version."""
        return short_hash(
            {"generator": SYNTH_COMMANDS_GENERATOR_VERSION, **self.model_dump(mode="json")}
        )

    @property
    def clips_per_speaker(self) -> int:
        return len(self.words) * self.takes_per_speaker + self.silence_clips_per_speaker


# ----------------------------------------------------------------------------- synth-phrases

SYNTH_PHRASES_GENERATOR_VERSION = 1
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DEFAULT_PHRASES: tuple[str, ...] = (
    "turn left", "turn right", "go up", "go down", "go forward", "go backward", "stop now",
    "switch on", "switch off", "follow me", "yes please", "no thanks", "learn this word",
    "go left then right", "open the house", "wow that is visual",
)  # fmt: skip
_DIGIT_SALT = 0xD161_7500


class SynthPhrasesSettings(BaseModel):
    """Everything that determines the generated dataset (and therefore its cache key)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    phrases: tuple[str, ...] = Field(default=DEFAULT_PHRASES, max_length=500)
    """Fixed phrases to synthesize: unique, lowercase ASCII words separated by one space;
    default: 16 command phrases. May be empty when ``digit_strings`` > 0."""
    digit_strings: int = Field(default=8, ge=0, le=500)
    """Seeded strings of spoken digits ("four two nine") added to the phrases, duplicates
    dropped; 0: none."""
    digits_min: int = Field(default=2, ge=1, le=10)
    """Fewest digits in a digit string."""
    digits_max: int = Field(default=4, ge=1, le=10)
    """Most digits in a digit string, at least ``digits_min``."""
    num_speakers: NumSpeakers = 40
    """Synthetic speakers (synth-commands' seeded eSpeak NG voices) reading every text."""
    takes_per_speaker: TakesPerSpeaker = 1
    """Clips each speaker records of every text."""
    test_speaker_fraction: TestSpeakerFraction = 0.2
    """Share of the speakers held out (seeded) for the test split; it must leave at least one
    train and one test speaker."""
    clip_seconds: float = Field(default=3.0, ge=1.0, le=30.0)
    """Length of every clip in seconds (16 kHz); ``model.input_frames`` and
    ``data.features.frames`` should cover it (300 frames = 3 s)."""
    snr_db_min: SnrDb = 10.0
    """Lowest signal-to-noise ratio (dB) of the speech over its background noise; each clip's
    SNR is drawn uniformly from [``snr_db_min``, ``snr_db_max``]."""
    snr_db_max: SnrDb = 30.0
    """Highest signal-to-noise ratio (dB) of a clip, at least ``snr_db_min``."""
    seed: GeneratorSeed = 0
    """Seed of the generated dataset (voices, digit strings, held-out speakers, clip draws),
    independent of ``scenario.seed``: a new value builds a new cached dataset."""

    @field_validator("phrases")
    @classmethod
    def _check_phrases(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        bad = [p for p in phrases if p != " ".join(p.split()) or not p.replace(" ", "").isalpha()]
        bad += [p for p in phrases if not (p.isascii() and p.islower())]
        if bad:
            raise ValueError(f"phrases must be lowercase ASCII words separated by one space: {bad}")
        if len(set(phrases)) != len(phrases):
            raise ValueError("phrases must be unique")
        return phrases

    @model_validator(mode="after")
    def _check_ranges(self) -> Self:
        check_speakers_and_snr(
            self.num_speakers, self.test_speaker_fraction, self.snr_db_min, self.snr_db_max
        )
        if self.digits_min > self.digits_max:
            raise ValueError("digits_min must be <= digits_max")
        if not self.phrases and not self.digit_strings:
            raise ValueError("no phrases: give phrases or digit_strings > 0")
        # Duplicate digit strings are dropped, so this bound is exact unless it is exceeded; only
        # then are the digits drawn (with numpy), to count the texts exactly.
        most_texts = len(self.phrases) + self.digit_strings
        if (
            self._seconds_of_audio(most_texts) > MAX_CLIPS
            and self._seconds_of_audio(len(self.all_phrases())) > MAX_CLIPS
        ):
            raise ValueError(f"at most {MAX_CLIPS} s of audio: the build holds it in memory")
        return self

    def _seconds_of_audio(self, num_texts: int) -> float:
        return self.num_speakers * num_texts * self.takes_per_speaker * self.clip_seconds

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * SAMPLE_RATE))

    def all_phrases(self) -> tuple[str, ...]:
        """The fixed phrases, then ``digit_strings`` seeded digit strings (duplicates dropped).

        Imports numpy (its seeded generator draws the digits): validation calls this only when
        the audio could exceed the size limit.
        """
        import numpy as np

        rng = np.random.default_rng([self.seed, _DIGIT_SALT])
        digits: list[str] = []
        for _ in range(self.digit_strings):
            length = int(rng.integers(self.digits_min, self.digits_max + 1))
            digits.append(" ".join(DIGITS[int(d)] for d in rng.integers(0, 10, size=length)))
        return tuple(dict.fromkeys((*self.phrases, *digits)))

    def cache_key(self) -> str:
        return short_hash(
            {
                "generator": SYNTH_PHRASES_GENERATOR_VERSION,
                "commands": SYNTH_COMMANDS_GENERATOR_VERSION,
                **self.model_dump(mode="json"),
            }
        )
