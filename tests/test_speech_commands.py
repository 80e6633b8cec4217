"""speech-commands and audiofolder on tiny local copies in the real layouts (tests/
speech_commands_fixture.py): loading, the 12-class mapping, speaker partitions, caching, errors."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
from speech_commands_fixture import (
    NUM_TEST_SILENCE,
    ODD_RATE,
    ODD_SPEAKER,
    OTHERS,
    SPEAKERS,
    WORDS,
    count_test_words,
    count_train_words,
    make_archive,
    make_parquet,
    word_wave,
)

from partitioners.natural import SpeakerGroupsPartitioner, SpeakerPartitioner
from partitioners.params import SpeakerGroupsParams, SpeakerParams
from simfl.config import scenario_from_dict
from simfl.data import local_copies
from simfl.data import speech_commands as SC
from simfl.data.audiofolder import load_audiofolder
from simfl.data.clip_format import CLIP_SAMPLES, SILENCE_LABEL
from simfl.data.local_settings import AudioFolderSettings, SpeechCommandsSettings
from simfl.data.prepare import prepare_data
from simfl.data.speech_commands import load_speech_commands
from simfl.data.views import COMMAND_WORDS, TWELVE_CLASS_NAMES, UNKNOWN_LABEL
from simfl.errors import ScenarioError
from simfl.pipeline import prepare_scenario_data
from simfl.schema.data import SpeechCommandsData

COLUMNS = ["audio", "word", "speaker_id", "accent", "take", "file"]
LAYOUTS = ("archive", "parquet")


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("speech-commands")
    return {
        "archive": make_archive(root / "speech_commands_v0.02"),
        "parquet": make_parquet(root / "speech_commands_parquet"),
    }


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def loaded(copies: dict[str, Path], cache: Path):
    return {
        layout: load_speech_commands(SpeechCommandsSettings(path=str(path)), cache)
        for layout, path in copies.items()
    }


def audio_of(split) -> np.ndarray:
    column = split.with_format("arrow")[:]["audio"].combine_chunks()
    return column.flatten().to_numpy().reshape(len(split), -1)


def data_config(path: Path, **extra) -> SpeechCommandsData:
    return SpeechCommandsData(dataset="speech-commands", path=str(path), num_clients=4, **extra)


# --- layouts ---------------------------------------------------------------------------------


def test_layouts_are_detected(copies: dict[str, Path]) -> None:
    for layout, path in copies.items():
        assert SpeechCommandsSettings(path=str(path)).resolved_layout() == layout
        assert SpeechCommandsSettings(path=str(path), layout=layout).resolved_layout() == layout
    # the Hub branch checkout root (holding v0.02/) and the v0.02 folder itself both work
    parquet = copies["parquet"]
    assert local_copies.parquet_files(parquet / "v0.02") == local_copies.parquet_files(parquet)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_both_layouts_load_with_the_synth_commands_contract(loaded, layout: str) -> None:
    dataset = loaded[layout]
    assert set(dataset) == {"train", "test"}
    for split in dataset.values():
        assert split.column_names == COLUMNS
        audio = audio_of(split)
        assert audio.dtype == np.int16 and audio.shape == (split.num_rows, CLIP_SAMPLES)
        assert set(split["accent"]) == {"unknown"}
    train, test = dataset["train"], dataset["test"]
    assert Counter(w for w in train["word"] if w != SILENCE_LABEL).total() == count_train_words()
    assert Counter(w for w in test["word"] if w != SILENCE_LABEL).total() == count_test_words()
    assert set(train["word"]) == set(test["word"]) == {*WORDS, SILENCE_LABEL}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_splits_follow_the_lists_and_hold_out_speakers(loaded, layout: str) -> None:
    train, test = loaded[layout]["train"], loaded[layout]["test"]
    assert set(train["speaker_id"]) == set(SPEAKERS.train)
    assert set(test["speaker_id"]) == set(SPEAKERS.test)  # validation speakers are unused
    words = [(r["speaker_id"], r["word"], r["take"]) for r in train if r["word"] != SILENCE_LABEL]
    assert (SPEAKERS.train[1], "yes", 1) in words and len(set(words)) == len(words)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_audio_is_decoded_resampled_and_padded(loaded, layout: str) -> None:
    train = loaded[layout]["train"]
    rows = [i for i, r in enumerate(train) if r["speaker_id"] == SPEAKERS.train[2]]
    first = train[rows[0]]
    expected = word_wave(first["word"], SPEAKERS.train[2], first["take"])
    assert np.array_equal(audio_of(train.select([rows[0]]))[0], expected)  # 16 kHz: bit-exact
    odd = [
        i
        for i, r in enumerate(train)
        if r["speaker_id"] == ODD_SPEAKER and r["word"] != SILENCE_LABEL
    ]
    clip = audio_of(train.select(odd[:1]))[0].astype(np.float64)
    assert np.abs(clip[: int(0.7 * 16_000) - 200]).max() > 5000  # 0.7 s at 8 kHz upsampled...
    assert np.all(clip[int(0.7 * 16_000) + 50 :] == 0)  # ...and zero-padded to 1 s
    assert ODD_RATE == 8_000


@pytest.mark.parametrize("layout", LAYOUTS)
def test_silence_is_cut_from_background_noise_and_spread_over_speakers(loaded, layout: str) -> None:
    for name, split in loaded[layout].items():
        silence = [r for r in split if r["word"] == SILENCE_LABEL]
        words = split.num_rows - len(silence)
        from_noise = [r for r in silence if r["file"].startswith("_background_noise_/")]
        if layout == "parquet" and name == "test":  # the official test set's own 1 s clips
            assert len(silence) == NUM_TEST_SILENCE and not from_noise
        else:
            assert len(from_noise) == len(silence) == round(0.1 * words)
        speakers = Counter(r["speaker_id"] for r in silence)
        assert set(speakers) <= set(split["speaker_id"]) and max(speakers.values()) <= 2
        rows = [i for i, r in enumerate(split) if r["word"] == SILENCE_LABEL]
        audio = audio_of(split.select(rows))
        assert (np.abs(audio).max(axis=1) > 0).all()


def test_archive_test_silence_comes_from_the_held_out_end_of_each_recording(loaded) -> None:
    for name in ("train", "test"):
        for row in loaded["archive"][name]:
            if row["word"] == SILENCE_LABEL:
                offset = int(row["file"].rsplit("@", 1)[1])
                limit = int(0.8 * 6 * 16_000) - CLIP_SAMPLES  # regions are offset from their start
                assert 0 <= offset <= (limit if name == "train" else int(0.2 * 6 * 16_000))


def test_conversion_is_deterministic(copies: dict[str, Path], loaded, tmp_path: Path) -> None:
    again = load_speech_commands(SpeechCommandsSettings(path=str(copies["archive"])), tmp_path)
    for name in ("train", "test"):
        assert np.array_equal(audio_of(again[name]), audio_of(loaded["archive"][name]))
        assert again[name]["file"] == loaded["archive"][name]["file"]
        assert again[name]["speaker_id"] == loaded["archive"][name]["speaker_id"]


# --- 12-class view and speaker partitions ----------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_12_class_mapping(copies: dict[str, Path], cache: Path, layout: str) -> None:
    config = data_config(copies[layout])
    data = prepare_data(config, cache)
    assert data.label_names == list(TWELVE_CLASS_NAMES)
    dataset = load_speech_commands(config, cache)
    for split_data, split in ((data.train, dataset["train"]), (data.test, dataset["test"])):
        words = np.asarray(split["word"])[split_data.rows]
        for word, label in zip(words, split_data.labels, strict=True):
            if word in COMMAND_WORDS:
                assert data.label_names[label] == word
            elif word == SILENCE_LABEL:
                assert data.label_names[label] == SILENCE_LABEL
            else:
                assert word in OTHERS and data.label_names[label] == UNKNOWN_LABEL
        counts = Counter(data.label_names[i] for i in split_data.labels)
        assert set(counts) == set(TWELVE_CLASS_NAMES)
        assert list(split_data.metadata["speaker_id"]) == list(
            np.asarray(split["speaker_id"])[split_data.rows]
        )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_speaker_partitions_keep_each_speaker_on_one_client(
    copies: dict[str, Path], cache: Path, layout: str
) -> None:
    data = prepare_data(data_config(copies[layout]), cache)
    speakers = data.train.metadata["speaker_id"].to_numpy()
    for partitioner in (
        SpeakerPartitioner(8, SpeakerParams(), seed=1),
        SpeakerGroupsPartitioner(4, SpeakerGroupsParams(group_size=2), seed=1),
    ):
        parts = partitioner.split(data.train.labels, data.train.metadata)
        assert sorted(np.concatenate(parts).tolist()) == list(range(len(speakers)))
        owner = {}
        for client, rows in enumerate(parts):
            for speaker in set(speakers[rows]):
                assert owner.setdefault(speaker, client) == client
        assert len(owner) == len(SPEAKERS.train)


# --- cache -----------------------------------------------------------------------------------


def test_cache_hit_does_not_convert_and_a_changed_copy_gets_a_new_key(
    copies: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    source = shutil.copytree(copies["archive"], tmp_path / "copy")
    settings = SpeechCommandsSettings(path=str(source))
    load_speech_commands(settings, tmp_path / "cache")
    monkeypatch.setattr(SC, "split_makers", lambda s: pytest.fail("cache hit must not convert"))
    assert load_speech_commands(settings, tmp_path / "cache")["train"].num_rows > 0
    key = settings.cache_key()
    assert SpeechCommandsSettings(path=str(source), silence_seed=1).cache_key() != key
    (source / "yes" / "ffffffff_nohash_0.wav").write_bytes(
        (source / "yes").iterdir().__next__().read_bytes()
    )
    local_copies.source_fingerprint.cache_clear()
    assert settings.cache_key() != key


# --- errors ----------------------------------------------------------------------------------


def base_scenario(data: dict) -> dict:
    return {
        "scenario": {"name": "x", "rounds": 1},
        "data": {"dataset": "speech-commands", "num_clients": 2, **data},
        "partition": {"kind": "iid"},
        "model": {"name": "kws-cnn"},
        "strategy": {"name": "fedavg", "min_available_nodes": 2, "min_train_nodes": 2,
                     "min_evaluate_nodes": 2},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "missing required key 'data.path'"),
        ({"path": "{tmp}", "layout": "tar"}, "key 'data.layout'"),
    ],
)
def test_bad_data_sections_are_one_line_scenario_errors(
    tmp_path: Path, data: dict, expected: str
) -> None:
    data = {k: v.replace("{tmp}", str(tmp_path)) for k, v in data.items()}
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(base_scenario(data), "sc.toml")
    message = str(error.value)
    assert expected in message and message.startswith("sc.toml: ") and "\n" not in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"path": "/no/such/dir"},
            "sc.toml: key 'data.path': no such directory: /no/such/dir (point it at your local "
            "copy)",
        ),
        ({"path": "{tmp}"}, "sc.toml: key 'data': data.path {tmp} is neither an extracted"),
        ({"path": "{tmp}", "layout": "archive"}, "testing_list.txt: not an extracted"),
        ({"path": "{tmp}", "layout": "parquet"}, "not the Parquet conversion"),
    ],
)
def test_a_missing_or_wrong_local_copy_is_a_one_line_scenario_error_when_preparing(
    tmp_path: Path, data: dict, expected: str
) -> None:
    """The schema does not look at the disk; preparing the data does, naming file and key."""
    data = {k: v.replace("{tmp}", str(tmp_path)) for k, v in data.items()}
    raw = base_scenario(data)
    raw.setdefault("tracking", {})["cache_dir"] = str(tmp_path / "cache")
    scenario = scenario_from_dict(raw, "sc.toml")
    with pytest.raises(ScenarioError) as error:
        prepare_scenario_data(scenario)
    message = str(error.value)
    assert expected.replace("{tmp}", str(tmp_path)) in message
    assert message.startswith("sc.toml: key 'data") and "\n" not in message
    assert not (tmp_path / "cache").exists()


def test_cli_exits_2_naming_the_key(tmp_path: Path) -> None:
    scenario = Path(__file__).parents[1] / "scenarios" / "speech-commands.toml"
    done = subprocess.run(
        [sys.executable, "-m", "simfl.cli", "data", "prepare", str(scenario),
         "--set", "data.path=/nope", "--set", f"tracking.cache_dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "speech-commands.toml" in lines[0] and "data.path" in lines[0]


# --- audiofolder -----------------------------------------------------------------------------


def make_audiofolder(root: Path) -> Path:
    """train/test label folders at 8 kHz; train speakers from metadata.csv, test from names."""
    lines = ["file_name,speaker_id,accent"]
    for split, speakers in (("train", ("ann", "bob")), ("test", ("cy",))):
        for word in ("yes", "cat", SILENCE_LABEL):
            (root / split / word).mkdir(parents=True)
            for speaker in speakers:
                name = f"{speaker}_nohash_0.wav" if split == "test" else f"{speaker}-{word}.wav"
                wave = word_wave("yes" if word == SILENCE_LABEL else word, "ab", 0, 8_000, 1.2)
                soundfile.write(root / split / word / name, wave, 8_000)
                if split == "train":
                    lines.append(f"{word}/{name},{speaker},en-gb")
    (root / "train" / "metadata.csv").write_text("\n".join(lines) + "\n")
    (root / "validation").mkdir()
    return root


def test_audiofolder_loads_labels_speakers_and_metadata(tmp_path: Path) -> None:
    root = make_audiofolder(tmp_path / "folder")
    dataset = load_audiofolder(AudioFolderSettings(path=str(root)), tmp_path / "cache")
    train, test = dataset["train"], dataset["test"]
    assert train.column_names == COLUMNS and audio_of(train).shape == (6, CLIP_SAMPLES)
    assert Counter(train["word"]) == {"yes": 2, "cat": 2, SILENCE_LABEL: 2}
    assert set(train["speaker_id"]) == {"ann", "bob"} and set(train["accent"]) == {"en-gb"}
    assert set(test["speaker_id"]) == {"cy"} and set(test["accent"]) == {"unknown"}
    _, labels, names = __import__("simfl.data.views", fromlist=["apply_view"]).apply_view(
        train["word"], "12-class"
    )
    assert sorted({names[i] for i in labels}) == sorted(["yes", UNKNOWN_LABEL, SILENCE_LABEL])


def test_audiofolder_without_a_test_split_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train" / "yes").mkdir(parents=True)
    scenario = scenario_from_dict(
        {**base_scenario({}), "data": {"dataset": "audiofolder", "num_clients": 2,
                                       "path": str(tmp_path)}}, "sc.toml"
    )  # fmt: skip
    with pytest.raises(ScenarioError, match="^key 'data': .*no test split directory"):
        prepare_data(scenario.data, tmp_path / "cache")
    with pytest.raises(ScenarioError, match="^key 'data.path': no such directory: /nope"):
        AudioFolderSettings(path="/nope").check_local_copy()
