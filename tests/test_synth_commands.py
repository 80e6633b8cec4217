"""synth-commands: real eSpeak NG synthesis on tiny settings (speakers, eSpeak, DSP, build)."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import datasets
import numpy as np
import pydantic
import pytest

from simfl.data import settings as data_settings
from simfl.data import synth_commands as S
from simfl.data import synth_speakers as speakers
from simfl.data.clip_format import CLIP_SAMPLES, SILENCE_LABEL, SPEECH_COMMANDS_WORDS
from simfl.data.espeak import ESpeak
from simfl.data.settings import SynthCommandsSettings
from simfl.data.synth_commands import build_synth_commands, load_synth_commands, synthesize_speaker
from simfl.data.synth_speakers import held_out_speakers, speaker_profile

TINY = SynthCommandsSettings.model_validate(
    {
        "words": ["yes", "no", "marvin", "backward", "zero"],
        "num_speakers": 4,
        "takes_per_speaker": 2,
        "silence_clips_per_speaker": 1,
        "test_speaker_fraction": 0.25,
        "snr_db_min": 20.0,
        "snr_db_max": 30.0,
        "seed": 3,
    }
)
COLUMNS = ["audio", "word", "speaker_id", "accent", "voice", "take"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, int]]]:
    """TINY built once with two workers; also returns the progress calls."""
    calls: list[tuple[int, int]] = []
    cache = tmp_path_factory.mktemp("cache2")
    path = build_synth_commands(
        TINY, cache, num_workers=2, progress=lambda d, t: calls.append((d, t))
    )
    return path, calls


@pytest.fixture(scope="module")
def dataset(built: tuple[Path, list[tuple[int, int]]]) -> datasets.DatasetDict:
    return datasets.load_from_disk(str(built[0]))


def audio_of(split: datasets.Dataset) -> np.ndarray:
    """The audio column as stored (the numpy formatter would widen int16 to int64)."""
    column = split.with_format("arrow")[:]["audio"].combine_chunks()
    return column.flatten().to_numpy().reshape(len(split), -1)


def window_ratio_db(clip: np.ndarray, window: int = 800) -> float:
    """Loudest over quietest 50 ms RMS: high for a word over noise, low for noise alone."""
    rms = np.sqrt((clip.astype(np.float64).reshape(-1, window) ** 2).mean(axis=1)) + 1e-9
    return float(20 * np.log10(rms.max() / rms.min()))


# --- settings --------------------------------------------------------------------------------


def test_defaults_cover_the_35_speech_commands_words() -> None:
    assert len(SPEECH_COMMANDS_WORDS) == 35 == len(set(SPEECH_COMMANDS_WORDS))
    assert SynthCommandsSettings().words == SPEECH_COMMANDS_WORDS
    assert {"marvin", "sheila", "visual", "tree", "three"} <= set(SPEECH_COMMANDS_WORDS)


@pytest.mark.parametrize(
    "bad",
    [
        {"num_speakers": 1},
        {"takes_per_speaker": 0},
        {"test_speaker_fraction": 1.0},
        {"snr_db_min": 30.0, "snr_db_max": 10.0},
        {"words": ("yes", "yes")},
        {"words": ("Yes",)},
        {"words": ()},
        {"typo_field": 1},
    ],
)
def test_settings_reject_invalid_values(bad: dict) -> None:
    with pytest.raises(pydantic.ValidationError):
        SynthCommandsSettings(**bad)


def test_settings_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        TINY.seed = 4  # type: ignore[misc]


def test_cache_key_is_stable_and_tracks_settings_and_generator_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = TINY.cache_key()
    assert key == SynthCommandsSettings(**TINY.model_dump()).cache_key()
    assert len(key) == 16
    assert TINY.model_copy(update={"seed": 4}).cache_key() != key
    version = data_settings.SYNTH_COMMANDS_GENERATOR_VERSION
    monkeypatch.setattr(data_settings, "SYNTH_COMMANDS_GENERATOR_VERSION", version + 1)
    assert TINY.cache_key() != key


# --- speakers --------------------------------------------------------------------------------


def test_speaker_profiles_are_deterministic_and_in_range() -> None:
    profiles = [speaker_profile(0, i) for i in range(50)]
    assert profiles == [speaker_profile(0, i) for i in range(50)]
    assert profiles != [speaker_profile(1, i) for i in range(50)]
    for p in profiles:
        assert p.accent in speakers.ACCENTS
        assert p.voice in speakers.FEMALE_VARIANTS + speakers.MALE_VARIANTS
        assert 0 <= p.pitch <= 100 and 0 <= p.pitch_range <= 100 and 80 <= p.rate <= 450
        assert abs(sum(p.noise_mix) - 1.0) < 1e-9
    assert len({(p.accent, p.voice) for p in profiles}) > 25  # speakers really differ


def speak_every_accent(variant: str) -> list[np.ndarray]:
    """ "yes" in every accent with ``variant``, from one fresh load of the library."""
    with ESpeak() as tts:
        return [
            tts.synth("yes", f"{voice_name}+{variant}", rate=175, pitch=50, pitch_range=50, seed=1)
            for voice_name in speakers.ACCENTS.values()
        ]


@pytest.mark.parametrize("variant", speakers.FEMALE_VARIANTS + speakers.MALE_VARIANTS)
def test_every_drawable_voice_exists_and_is_reproducible(variant: str) -> None:
    first, again = speak_every_accent(variant), speak_every_accent(variant)
    for accent, wave, repeat in zip(speakers.ACCENTS, first, again, strict=True):
        assert len(wave) > 2000, accent  # the voice exists and speaks
        assert np.abs(wave).max() < 32000, accent  # no clipping inside eSpeak
        assert np.array_equal(wave, repeat), accent  # no state survives a library reload


def test_held_out_speakers_fraction_and_seed() -> None:
    settings = SynthCommandsSettings(num_speakers=120)
    test = held_out_speakers(settings)
    assert len(test) == 24 and test <= set(range(120))
    assert held_out_speakers(settings) == test
    assert held_out_speakers(settings.model_copy(update={"seed": 1})) != test


# --- determinism -----------------------------------------------------------------------------


def test_same_speaker_is_bit_identical_in_fresh_processes_and_after_other_speakers() -> None:
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
        fresh = [pool.submit(synthesize_speaker, TINY, 2).result() for _ in range(2)]
    synthesize_speaker(TINY, 0)  # leave the in-process eSpeak with some history...
    here = synthesize_speaker(TINY, 2)  # ...which the fresh library load must discard
    assert np.array_equal(fresh[0].audio, fresh[1].audio)
    assert np.array_equal(fresh[0].audio, here.audio)
    assert fresh[0].words == here.words and fresh[0].takes == here.takes


def test_build_is_bit_identical_across_worker_counts(
    dataset: datasets.DatasetDict, tmp_path: Path
) -> None:
    other = load_synth_commands(TINY, tmp_path, num_workers=1)
    for split in ("train", "test"):
        assert np.array_equal(audio_of(other[split]), audio_of(dataset[split]))
        for column in COLUMNS[1:]:
            assert other[split][column] == dataset[split][column]


# --- content ---------------------------------------------------------------------------------


def test_columns_shapes_and_dtypes(dataset: datasets.DatasetDict) -> None:
    assert set(dataset) == {"train", "test"}
    for split in dataset.values():
        assert split.column_names == COLUMNS
        assert split.features["audio"] == datasets.Sequence(datasets.Value("int16"))
        audio = audio_of(split)
        assert audio.dtype == np.int16 and audio.shape == (split.num_rows, CLIP_SAMPLES)
        assert isinstance(split[0]["take"], int)
        assert json.loads(split.info.description)["sample_rate"] == 16000


def test_rows_per_speaker_are_ordered_by_word_then_take(dataset: datasets.DatasetDict) -> None:
    expected = [(w, t) for w in TINY.words for t in range(2)] + [(SILENCE_LABEL, 0)]
    n = TINY.clips_per_speaker
    for split in dataset.values():
        rows = list(zip(split["speaker_id"], split["word"], split["take"], strict=True))
        speakers = [rows[i][0] for i in range(0, len(rows), n)]
        assert speakers == sorted(speakers) and len(rows) == n * len(speakers)
        for start in range(0, len(rows), n):
            block = rows[start : start + n]
            assert {r[0] for r in block} == {block[0][0]}
            assert [(w, t) for _, w, t in block] == expected


def test_train_and_test_speakers_are_disjoint(dataset: datasets.DatasetDict) -> None:
    train, test = set(dataset["train"]["speaker_id"]), set(dataset["test"]["speaker_id"])
    assert not train & test
    assert train | test == {speakers.speaker_id(i) for i in range(TINY.num_speakers)}
    assert test == {speakers.speaker_id(i) for i in held_out_speakers(TINY)}
    table = dataset["train"].select_columns(["speaker_id", "accent", "voice"]).to_pandas()
    assert (table.groupby("speaker_id").nunique() == 1).all().all()  # one voice per speaker


def test_words_have_speech_energy_and_silence_is_quiet_noise(
    dataset: datasets.DatasetDict,
) -> None:
    split = dataset["train"]
    audio, words = audio_of(split), split["word"]
    for clip, word in zip(audio, words, strict=True):
        if word == SILENCE_LABEL:
            assert np.abs(clip).max() > 0 and window_ratio_db(clip) < 10.0
        else:
            assert np.abs(clip).max() >= 0.29 * 32767, word  # peak-normalized, not silent
            assert window_ratio_db(clip) > 15.0, word  # a word stands out of its background


def test_takes_differ(dataset: datasets.DatasetDict) -> None:
    audio = audio_of(dataset["train"])
    assert not np.array_equal(audio[0], audio[1])  # same speaker and word, two takes


# --- cache -----------------------------------------------------------------------------------


def test_cache_hit_returns_the_same_path_without_regenerating(
    built: tuple[Path, list[tuple[int, int]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, calls = built
    assert path == S.dataset_path(TINY, path.parent.parent)
    assert path.name == TINY.cache_key() and (path / S.INFO_FILE).is_file()
    assert calls[-1] == (TINY.num_speakers, TINY.num_speakers) and len(calls) == TINY.num_speakers

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("cache hit must not synthesize")

    monkeypatch.setattr(S, "synthesize_all", fail)
    assert build_synth_commands(TINY, path.parent.parent) == path
    assert load_synth_commands(TINY, path.parent.parent)["test"].num_rows > 0


def test_losing_a_build_race_keeps_the_winner_and_leaves_no_temp_dirs(
    built: tuple[Path, list[tuple[int, int]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = S.dataset_path(TINY, tmp_path)

    def synthesize_while_another_process_wins(settings, num_workers=None, progress=None):
        shutil.copytree(built[0], final)  # the other builder renames its result into place
        (final / "winner").touch()
        silent = np.zeros((settings.clips_per_speaker, CLIP_SAMPLES), np.int16)
        words = [w for w in settings.words for _ in range(2)] + [SILENCE_LABEL]
        takes = [0, 1] * len(settings.words) + [0]
        return [
            S.SpeakerClips(speaker_profile(settings.seed, i), silent, words, takes)
            for i in range(settings.num_speakers)
        ]

    monkeypatch.setattr(S, "synthesize_all", synthesize_while_another_process_wins)
    assert build_synth_commands(TINY, tmp_path) == final
    assert (final / "winner").exists()
    assert [p.name for p in final.parent.iterdir()] == [final.name]
