"""``synth-commands``: Speech Commands words synthesized offline with eSpeak NG.

Why: a keyword-spotting benchmark that needs no download. Each synthetic speaker is an eSpeak
voice variant x English accent x pitch x pitch range x rate (plus a microphone tilt and a noise
"room"), so speakers differ the way federated clients do. Clips are 1 s, 16 kHz, int16, with the
word at a random offset over coloured background noise.

Layout: ``cache_dir/synth-commands/<settings.cache_key()>/`` holds a ``datasets.DatasetDict``
(``save_to_disk``) with splits "train" and "test" (held-out speakers) and columns ``audio``
(int16 sequence), ``word`` (``"_silence_"`` for noise-only clips), ``speaker_id``, ``accent``,
``voice``, ``take``; sample rate and settings are in ``synth_commands.json`` beside it and in
each split's ``info.description`` (JSON).

Determinism: eSpeak keeps hidden synthesizer state between utterances (pitch flutter index,
filter memories, a clock-seeded RNG), so the same call can give different samples depending on
what was synthesized before in the process. Every speaker therefore gets a *fresh copy of the
library state*: it is loaded, seeded with ``espeak_ng_SetRandSeed`` and unloaded (``dlclose``)
around each speaker, and the unload is verified. A speaker's audio thus depends only on the
settings and its index, not on the worker that made it or what that worker did before.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import multiprocessing
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simfl.tracking.atomic import publish_directory

if TYPE_CHECKING:
    import datasets

# Bump whenever the generated audio or metadata would change: it is part of every cache key.
GENERATOR_VERSION = 1

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE
SILENCE_LABEL = "_silence_"
DATASET_NAME = "synth-commands"
INFO_FILE = "synth_commands.json"

SPEECH_COMMANDS_WORDS: tuple[str, ...] = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
    "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one",
    "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow",
    "yes", "zero",
)  # fmt: skip

# Accent label -> eSpeak voice name. All English voices in the bundled espeak-ng-data except
# en-Shaw (Shavian alphabet input, not an accent). "en" is eSpeak's en-GB voice.
ACCENTS: dict[str, str] = {
    "en-us": "en-us",
    "en-us-nyc": "en-us-nyc",
    "en-gb": "en",
    "en-gb-x-rp": "en-gb-x-rp",
    "en-gb-scotland": "en-gb-scotland",
    "en-gb-x-gbclan": "en-gb-x-gbclan",
    "en-gb-x-gbcwmd": "en-gb-x-gbcwmd",
    "en-029": "en-029",
}

# Human-sounding variants from espeak-ng-data/voices/!v; robots, whispers, croaks, long echoes
# and variants that clip or override the language are left out, and so is "Reed" (Klatt with
# breath), whose output changes between library loads in one process. Drawn gender-balanced.
FEMALE_VARIANTS: tuple[str, ...] = (
    "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika", "aunty", "belinda",
    "grandma", "linda", "shelby", "steph", "steph2", "steph3", "zac",
)  # fmt: skip
MALE_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Alex", "Andy", "Denis", "Diogo", "Gene",
    "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Mario", "Michael", "Mike", "Nguyen", "adam",
    "benjamin", "boris", "david", "ed", "edward", "edward2", "grandpa", "gustave", "iven2",
    "klatt", "klatt2", "klatt3", "klatt4", "marcelo", "max", "michel", "miguel", "mike2", "paul",
    "pedro", "quincy", "rob", "robert", "sandro", "travis", "victor",
)  # fmt: skip

_SPLIT_SALT = 0x5EED_5B17  # separates the train/test draw from the speaker draws
_ESPEAK_RATE = 22_050
MAX_CLIPS = 150_000  # ~4.8 GB of int16 audio, about 1.4x the real Speech Commands v0.02
_MAX_SPEECH = int(0.96 * CLIP_SAMPLES)  # leave a little room around the word

ProgressFn = Callable[[int, int], None]


class SynthCommandsSettings(BaseModel):
    """Everything that determines the generated dataset (and therefore its cache key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    words: tuple[str, ...] = Field(default=SPEECH_COMMANDS_WORDS, min_length=1, max_length=200)
    num_speakers: int = Field(default=120, ge=2, le=2000)
    takes_per_speaker: int = Field(default=2, ge=1, le=10)
    silence_clips_per_speaker: int = Field(default=2, ge=0, le=20)
    test_speaker_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    snr_db_min: float = Field(default=5.0, ge=-10.0, le=60.0)
    snr_db_max: float = Field(default=30.0, ge=-10.0, le=60.0)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)

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
        if self.snr_db_min > self.snr_db_max:
            raise ValueError("snr_db_min must be <= snr_db_max")
        if self.num_speakers * self.clips_per_speaker > MAX_CLIPS:
            raise ValueError(f"at most {MAX_CLIPS} clips: the build holds them all in memory")
        num_test = num_test_speakers(self.num_speakers, self.test_speaker_fraction)
        if not 1 <= num_test < self.num_speakers:
            raise ValueError("test_speaker_fraction must leave >= 1 train and >= 1 test speaker")
        return self

    def cache_key(self) -> str:
        """Short stable hash of the settings and GENERATOR_VERSION."""
        payload = json.dumps(
            {"generator": GENERATOR_VERSION, **self.model_dump(mode="json")}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def clips_per_speaker(self) -> int:
        return len(self.words) * self.takes_per_speaker + self.silence_clips_per_speaker


@dataclass(frozen=True)
class SpeakerProfile:
    """A synthetic speaker: fixed by (seed, index) alone, whatever the other settings."""

    index: int
    speaker_id: str
    accent: str
    voice: str
    pitch: int  # eSpeak espeakPITCH, 0..100 (50 = the variant's own pitch)
    pitch_range: int  # eSpeak espeakRANGE, 0..100
    rate: int  # words per minute
    tilt: float  # first-order "microphone" filter coefficient (>0 brighter, <0 duller)
    noise_mix: tuple[float, float, float]  # power fractions of white, pink, brown noise
    hum_hz: float  # mains hum fundamental, 0.0 = no hum


def speaker_id(index: int) -> str:
    return f"spk{index:04d}"


def speaker_profile(seed: int, index: int) -> SpeakerProfile:
    """Draw speaker ``index`` deterministically from ``np.random.default_rng([seed, index])``."""
    rng = np.random.default_rng([seed, index])
    female = rng.random() < 0.5
    variants = FEMALE_VARIANTS if female else MALE_VARIANTS
    hum_hz = float(rng.choice([50.0, 60.0])) if rng.random() < 0.25 else 0.0
    return SpeakerProfile(
        index=index,
        speaker_id=speaker_id(index),
        accent=str(rng.choice(list(ACCENTS))),
        voice=str(rng.choice(variants)),
        pitch=int(rng.integers(25, 76)),
        pitch_range=int(rng.integers(20, 81)),
        rate=int(rng.integers(140, 211)),
        tilt=float(rng.uniform(-0.6, 0.6)),
        noise_mix=tuple(float(w) for w in rng.dirichlet([1.0, 1.0, 1.0])),  # type: ignore[arg-type]
        hum_hz=hum_hz,
    )


def num_test_speakers(num_speakers: int, fraction: float) -> int:
    return int(round(num_speakers * fraction))


def held_out_speakers(settings: SynthCommandsSettings) -> frozenset[int]:
    """Held-out speakers: a seeded random subset, disjoint from the train speakers."""
    n_test = num_test_speakers(settings.num_speakers, settings.test_speaker_fraction)
    order = np.random.default_rng([settings.seed, _SPLIT_SALT]).permutation(settings.num_speakers)
    return frozenset(int(i) for i in order[:n_test])


# ---------------------------------------------------------------------------------------------
# eSpeak NG through ctypes
# ---------------------------------------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_VOLUME = 40  # below the default 100 so loud variants do not clip inside eSpeak
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class ESpeak:
    """A freshly loaded, seeded eSpeak NG instance; unloaded on exit so no state leaks.

    Use as ``with ESpeak() as tts: tts.synth(...)``; not re-entrant, one at a time per process.
    """

    def __init__(self) -> None:
        import espeakng_loader

        self._lib_path = espeakng_loader.get_library_path()
        self._data_path = espeakng_loader.get_data_path()
        self._chunks: list[bytes] = []
        self._lib: ctypes.CDLL | None = None
        self._callback = _SYNTH_CALLBACK(self._collect)

    def __enter__(self) -> Self:
        if _is_loaded(self._lib_path):
            raise RuntimeError(
                "libespeak-ng is already loaded in this process; its state would leak"
            )
        lib = ctypes.CDLL(self._lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self._lib = lib
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate != _ESPEAK_RATE:
            self.__exit__()
            raise RuntimeError(f"espeak_Initialize failed (returned {rate})")
        lib.espeak_SetSynthCallback(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        import _ctypes

        if self._lib is None:
            return
        self._lib.espeak_Terminate()
        _ctypes.dlclose(self._lib._handle)
        self._lib = None
        if _is_loaded(self._lib_path):
            raise RuntimeError("libespeak-ng stayed loaded after dlclose; audio would not be fresh")

    def synth(
        self, text: str, voice: str, *, rate: int, pitch: int, pitch_range: int, seed: int
    ) -> np.ndarray:
        """Speak ``text``; int16 mono samples at 22050 Hz."""
        lib = self._lib
        assert lib is not None, "use ESpeak as a context manager"
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown eSpeak voice {voice!r}")
        params = {_PARAM_RATE: rate, _PARAM_PITCH: pitch, _PARAM_RANGE: pitch_range}
        for param, value in {**params, _PARAM_VOLUME: _VOLUME}.items():
            lib.espeak_SetParameter(param, value, 0)
        lib.espeak_ng_SetRandSeed(seed)
        self._chunks.clear()
        data = text.encode()
        status = lib.espeak_Synth(
            data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if status != 0 or lib.espeak_Synchronize() != 0:
            raise RuntimeError(f"espeak_Synth failed for {text!r} with status {status}")
        return np.frombuffer(b"".join(self._chunks), dtype=np.int16)

    def _collect(self, wav: Any, num_samples: int, _events: Any) -> int:
        if num_samples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, num_samples * 2))
        return 0  # 0 = continue synthesis


def _is_loaded(path: str) -> bool:
    """True if the shared library at ``path`` is mapped in this process (RTLD_NOLOAD probe)."""
    try:
        handle = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return False
    import _ctypes

    _ctypes.dlclose(handle._handle)  # drop the reference the probe just took
    return True


# ---------------------------------------------------------------------------------------------
# Signal processing: from eSpeak output to a noisy 1 s clip
# ---------------------------------------------------------------------------------------------


@functools.cache
def _resampling_filter() -> np.ndarray:
    """resample_poly's default low-pass for 320/441, designed once (it dominated the run time)."""
    from scipy.signal import firwin

    return firwin(2 * 10 * 441 + 1, 1.0 / 441, window=("kaiser", 5.0))


def resample_to_16k(wave: np.ndarray) -> np.ndarray:
    """22050 Hz -> 16000 Hz (ratio 320/441), float64 in [-1, 1]."""
    from scipy.signal import resample_poly

    return resample_poly(wave.astype(np.float64) / 32768.0, 320, 441, window=_resampling_filter())


def trim_silence(wave: np.ndarray, rel_threshold: float = 0.01, margin: int = 80) -> np.ndarray:
    """Cut eSpeak's leading/trailing silence, keeping ``margin`` samples (5 ms) around speech."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak == 0.0:
        return wave[:0]
    loud = np.flatnonzero(np.abs(wave) > rel_threshold * peak)
    return wave[max(loud[0] - margin, 0) : loud[-1] + margin + 1]


def apply_tilt(wave: np.ndarray, tilt: float) -> np.ndarray:
    """y[n] = x[n] - tilt * x[n-1]: a crude per-speaker microphone colouring."""
    out = wave.copy()
    out[1:] -= tilt * wave[:-1]
    return out


def coloured_noise(
    rng: np.random.Generator, mix: Sequence[float], n: int = CLIP_SAMPLES
) -> np.ndarray:
    """Unit-RMS noise whose power is split ``mix`` between white, pink (1/f) and brown (1/f^2).

    Independent noises add in power, so one white noise shaped by the summed spectrum is the
    same process as the sum of three, at a third of the FFTs.
    """
    # Flat below 40 Hz: otherwise brown noise spends its power on an inaudible slow drift.
    freqs = np.maximum(np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE), 40.0) / 1000.0
    shapes = [freqs**-exponent for exponent in (0.0, 1.0, 2.0)]
    psd = sum(w * shape / shape.mean() for w, shape in zip(mix, shapes, strict=True))
    psd[0] = 0.0  # no DC offset
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * np.sqrt(psd), n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def hum(rng: np.random.Generator, n: int, fundamental: float) -> np.ndarray:
    """Unit-RMS mains hum: a few harmonics with random phases."""
    t = np.arange(n) / SAMPLE_RATE
    phases = rng.uniform(0, 2 * np.pi, size=4)
    wave = sum(np.sin(2 * np.pi * fundamental * k * t + p) / k for k, p in enumerate(phases, 1))
    return wave / np.sqrt(np.mean(wave**2))


def background(
    rng: np.random.Generator, profile: SpeakerProfile, n: int = CLIP_SAMPLES
) -> np.ndarray:
    """Unit-RMS background for one clip: the speaker's coloured-noise mix (+ mains hum)."""
    noise = coloured_noise(rng, profile.noise_mix, n)
    if profile.hum_hz:
        noise = noise + rng.uniform(0.2, 0.6) * hum(rng, n, profile.hum_hz)
    return noise / np.sqrt(np.mean(noise**2))


def fit_length(wave: np.ndarray, max_len: int = _MAX_SPEECH, fade: int = 320) -> np.ndarray:
    """Truncate with a 20 ms fade-out if still too long (only after re-synthesis failed)."""
    if len(wave) <= max_len:
        return wave
    out = wave[:max_len].copy()
    out[-fade:] *= np.linspace(1.0, 0.0, fade)
    return out


def mix_clip(
    speech: np.ndarray, noise: np.ndarray, rng: np.random.Generator, snr_db: float
) -> np.ndarray:
    """Place ``speech`` at a random offset over ``noise`` at ``snr_db``; peak-normalize to int16.

    The clip is as long as ``noise`` (1 s here; longer for synth-phrases).
    """
    offset = int(rng.integers(0, len(noise) - len(speech) + 1))
    speech_power = float(np.mean(speech**2)) + 1e-12
    clip = noise * np.sqrt(speech_power / 10 ** (snr_db / 10))
    clip[offset : offset + len(speech)] += speech
    clip *= rng.uniform(0.3, 0.95) / (np.max(np.abs(clip)) + 1e-12)
    return to_int16(clip)


def silence_clip(noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise only, at a random level between -55 and -20 dBFS RMS."""
    return to_int16(noise * 10 ** (rng.uniform(-55.0, -20.0) / 20))


def to_int16(wave: np.ndarray) -> np.ndarray:
    return np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------------------------------------
# One speaker (the unit of work of a worker process)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeakerClips:
    """All clips of one speaker, in (word order, take) then silence order."""

    profile: SpeakerProfile
    audio: np.ndarray  # (n, CLIP_SAMPLES) int16
    words: list[str]
    takes: list[int]


def synthesize_speaker(settings: SynthCommandsSettings, index: int) -> SpeakerClips:
    """Every clip of speaker ``index``; bit-identical for the same settings in any process."""
    profile = speaker_profile(settings.seed, index)
    audio, words, takes = [], [], []
    with ESpeak() as tts:
        for word in settings.words:
            for take in range(settings.takes_per_speaker):
                audio.append(_word_clip(tts, settings, profile, word, take))
                words.append(word)
                takes.append(take)
    for take in range(settings.silence_clips_per_speaker):
        clip_rng = _clip_rng(settings.seed, index, SILENCE_LABEL, take)
        audio.append(silence_clip(background(clip_rng, profile), clip_rng))
        words.append(SILENCE_LABEL)
        takes.append(take)
    stacked = np.stack(audio) if audio else np.zeros((0, CLIP_SAMPLES), np.int16)
    return SpeakerClips(profile, stacked, words, takes)


def _clip_rng(seed: int, index: int, word: str, take: int) -> np.random.Generator:
    # Keyed by the word text, so a clip's random draws do not depend on the word list order.
    return np.random.default_rng([seed, index, zlib.crc32(word.encode()), take])


def _word_clip(
    tts: ESpeak, settings: SynthCommandsSettings, profile: SpeakerProfile, word: str, take: int
) -> np.ndarray:
    rng = _clip_rng(settings.seed, profile.index, word, take)
    speech = _speak_within_a_second(tts, rng, profile, word)
    speech = apply_tilt(speech, profile.tilt)
    noise = background(rng, profile)
    return mix_clip(
        speech, noise, rng, float(rng.uniform(settings.snr_db_min, settings.snr_db_max))
    )


def _speak_within_a_second(
    tts: ESpeak,
    rng: np.random.Generator,
    profile: SpeakerProfile,
    word: str,
    max_len: int = _MAX_SPEECH,
) -> np.ndarray:
    """Synthesize with take jitter; if longer than ``max_len``, re-speak faster (keeps pitch)."""
    rate = profile.rate * rng.uniform(0.92, 1.08)
    pitch = int(np.clip(profile.pitch + rng.integers(-4, 5), 0, 100))
    text = word + str(rng.choice([".", ".", ".", "!", "?"]))  # mostly statements
    espeak_seed = int(rng.integers(1, 2**31 - 1))
    voice = f"{ACCENTS[profile.accent]}+{profile.voice}"
    for _ in range(3):
        raw = tts.synth(
            text, voice, rate=int(min(rate, 450)), pitch=pitch,
            pitch_range=profile.pitch_range, seed=espeak_seed,
        )  # fmt: skip
        speech = trim_silence(resample_to_16k(raw))
        if len(speech) <= max_len:
            return speech
        rate *= 1.05 * len(speech) / max_len
    return fit_length(speech, max_len)


# ---------------------------------------------------------------------------------------------
# Building, caching and loading the DatasetDict
# ---------------------------------------------------------------------------------------------


def dataset_path(settings: SynthCommandsSettings, cache_dir: str | os.PathLike[str]) -> Path:
    """Where the dataset for ``settings`` lives (whether or not it is built yet)."""
    return Path(cache_dir) / DATASET_NAME / settings.cache_key()


def build_synth_commands(
    settings: SynthCommandsSettings,
    cache_dir: str | os.PathLike[str],
    num_workers: int | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Synthesize the dataset into the cache (atomically) unless it is already there."""
    final = dataset_path(settings, cache_dir)
    if final.exists():
        return final
    speakers = synthesize_all(settings, num_workers, progress)
    dataset_dict = _to_dataset_dict(settings, speakers)
    save_dataset(dataset_dict, final, _info_payload(settings))
    return final


def load_synth_commands(
    settings: SynthCommandsSettings,
    cache_dir: str | os.PathLike[str],
    num_workers: int | None = None,
    progress: ProgressFn | None = None,
) -> datasets.DatasetDict:
    """The dataset as a DatasetDict with splits "train" and "test"; built on first use."""
    import datasets

    path = build_synth_commands(settings, cache_dir, num_workers=num_workers, progress=progress)
    return datasets.load_from_disk(str(path))


def synthesize_all(
    settings: SynthCommandsSettings,
    num_workers: int | None = None,
    progress: ProgressFn | None = None,
    worker: Callable[[Any, int], Any] | None = None,
) -> list[SpeakerClips]:
    """All speakers, in speaker order, made by a pool of spawned processes.

    Spawn (not fork): the parent may hold torch/Ray threads. As with any spawn pool, a calling
    script needs an ``if __name__ == "__main__":`` guard. Workers are reused safely because
    each speaker gets a freshly loaded eSpeak (see the module docstring). ``worker`` (a
    top-level function of (settings, speaker index)) replaces :func:`synthesize_speaker` for
    other datasets built from the same speakers (synth-phrases).
    """
    worker = worker or synthesize_speaker
    total = settings.num_speakers
    workers = max(1, min(num_workers or _available_cpus(), total))
    results: list[SpeakerClips | None] = [None] * total
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(worker, settings, i): i for i in range(total)}
        try:
            for done, future in enumerate(as_completed(futures), 1):
                results[futures[future]] = future.result()
                if progress is not None:
                    progress(done, total)
        except BaseException:
            pool.shutdown(cancel_futures=True)  # do not finish the remaining speakers
            raise
    return [r for r in results if r is not None]


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _features() -> datasets.Features:
    import datasets

    return datasets.Features(
        {
            "audio": datasets.Sequence(datasets.Value("int16")),
            "word": datasets.Value("string"),
            "speaker_id": datasets.Value("string"),
            "accent": datasets.Value("string"),
            "voice": datasets.Value("string"),
            "take": datasets.Value("int32"),
        }
    )


def _speaker_table(clips: SpeakerClips) -> Any:
    """One speaker as a pyarrow table (one chunk per speaker keeps list offsets small)."""
    import pyarrow as pa

    n = len(clips.words)
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * CLIP_SAMPLES)
    audio = pa.ListArray.from_arrays(offsets, pa.array(clips.audio.reshape(-1)))
    p = clips.profile
    return pa.table(
        {
            "audio": audio,
            "word": pa.array(clips.words, pa.string()),
            "speaker_id": pa.array([p.speaker_id] * n, pa.string()),
            "accent": pa.array([p.accent] * n, pa.string()),
            "voice": pa.array([p.voice] * n, pa.string()),
            "take": pa.array(clips.takes, pa.int32()),
        }
    )


def _info_payload(settings: SynthCommandsSettings) -> dict[str, Any]:
    return {
        "name": DATASET_NAME,
        "sample_rate": SAMPLE_RATE,
        "generator_version": GENERATOR_VERSION,
        "cache_key": settings.cache_key(),
        "settings": settings.model_dump(mode="json"),
    }


def _to_dataset_dict(
    settings: SynthCommandsSettings, speakers: Sequence[SpeakerClips]
) -> datasets.DatasetDict:
    import datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    test = held_out_speakers(settings)
    features = _features()
    description = json.dumps(_info_payload(settings), sort_keys=True)
    splits = {}
    for name, keep in (("train", False), ("test", True)):
        tables = [_speaker_table(s) for s in speakers if (s.profile.index in test) == keep]
        table = pa.concat_tables(tables).cast(features.arrow_schema)
        info = datasets.DatasetInfo(description=description, features=features)
        # An explicit fingerprint: the default one pickles and hashes the whole table.
        fingerprint = f"{DATASET_NAME}-{settings.cache_key()}-{name}"
        splits[name] = datasets.Dataset(
            InMemoryTable(table), info=info, split=name, fingerprint=fingerprint
        )
    return datasets.DatasetDict(splits)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Silence HF datasets' tqdm bars for a block, restoring the caller's setting after."""
    import datasets

    was_disabled = not datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def save_dataset(
    dataset_dict: datasets.DatasetDict, final: Path, info: dict[str, Any] | None = None
) -> None:
    """Publish ``dataset_dict`` (and its ``info`` file) at ``final`` atomically."""

    def fill(tmp: Path) -> None:
        with _quiet_datasets():  # simfl's own progress bar already covers this stage
            dataset_dict.save_to_disk(str(tmp))
        if info is not None:
            (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

    publish_directory(final, fill)
