"""Scenario loading, overrides, hashing and the one-line error messages."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from simfl.config import load_scenario, scenario_from_dict
from simfl.errors import ScenarioError

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def _quickstart_text() -> str:
    return QUICKSTART.read_text()


def test_quickstart_is_valid_and_hash_is_stable():
    first, second = load_scenario(QUICKSTART), load_scenario(QUICKSTART)
    assert first.scenario.name == "quickstart"
    assert first.partition.kind == "dirichlet" and first.partition.alpha == 0.5
    assert first.full_hash() == second.full_hash()
    assert len(first.short_hash()) == 8


def test_resolved_toml_round_trips_to_the_same_hash(tmp_path):
    scenario = load_scenario(QUICKSTART)
    path = tmp_path / "resolved.toml"
    path.write_text(scenario.to_toml())
    assert load_scenario(path).full_hash() == scenario.full_hash()


def test_tracking_does_not_change_the_hash():
    base = load_scenario(QUICKSTART)
    moved = load_scenario(QUICKSTART, ["tracking.results_dir=elsewhere"])
    assert base.full_hash() == moved.full_hash()


def test_overrides_are_typed_and_change_the_hash():
    scenario = load_scenario(QUICKSTART, ["scenario.rounds=3", "partition.alpha=1e3"])
    assert scenario.scenario.rounds == 3
    assert scenario.partition.alpha == 1000.0
    assert scenario.full_hash() != load_scenario(QUICKSTART).full_hash()


def test_misspelt_key_names_file_key_and_suggestion(tmp_path):
    path = _write(tmp_path, _quickstart_text().replace("fraction_train", "fraction_trian"))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    message = str(error.value)
    assert "\n" not in message
    assert "bad.toml" in message and "strategy.fraction_trian" in message
    assert "did you mean 'fraction_train'" in message


def test_negative_rounds(tmp_path):
    path = _write(tmp_path, _quickstart_text().replace("rounds = 20", "rounds = -3"))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    message = str(error.value)
    assert "\n" not in message
    assert "scenario.rounds" in message and "greater than or equal to 1" in message
    assert "-3" in message


def test_unknown_strategy_lists_allowed(tmp_path):
    path = _write(tmp_path, _quickstart_text().replace('name = "fedavg"', 'name = "fedsgd"'))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    message = str(error.value)
    assert "\n" not in message
    assert "strategy.name" in message and "fedavg" in message and "fedsgd" in message


def test_unknown_partition_kind_lists_allowed(tmp_path):
    path = _write(tmp_path, _quickstart_text().replace('kind = "dirichlet"', 'kind = "zipf"'))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert "partition.kind" in str(error.value) and "'dirichlet'" in str(error.value)


def test_bad_value_inside_tagged_table_has_clean_key(tmp_path):
    path = _write(tmp_path, _quickstart_text().replace("alpha = 0.5", "alpha = 0"))
    with pytest.raises(ScenarioError, match=r"key 'partition.alpha': .*greater than 0"):
        load_scenario(path)


def test_unknown_override_key_is_rejected():
    with pytest.raises(ScenarioError, match="unknown key 'train.epochs'"):
        load_scenario(QUICKSTART, ["train.epochs=3"])


def test_malformed_override():
    with pytest.raises(ScenarioError, match="expected dotted.key=value"):
        load_scenario(QUICKSTART, ["rounds"])


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.toml")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(_write(tmp_path, "[scenario\nname="))


def test_missing_required_section():
    with pytest.raises(ScenarioError, match="missing required key 'model'"):
        scenario_from_dict(
            {
                "scenario": {"name": "x", "rounds": 1},
                "data": {"dataset": "synth-commands", "num_clients": 2},
                "partition": {"kind": "iid"},
                "strategy": {"name": "fedavg"},
            }
        )


def test_cross_check_local_test_split():
    with pytest.raises(ScenarioError, match="local_test_fraction"):
        load_scenario(QUICKSTART, ["data.local_test_fraction=0"])


def test_hashes_of_shipped_scenarios_are_unchanged_by_the_schema_move():
    """Pinned hashes: a shipped scenario's resolved form, and so its hash and cell ids, must
    not change (runs and sweep cells are identified by them)."""
    scenarios = QUICKSTART.parent
    assert load_scenario(QUICKSTART).full_hash() == (
        "14050a804efe56b48b069a4c9b91b0117af60162fd0eefa7b29ec35483e2ef97"
    )
    assert load_scenario(scenarios / "compose_label_quantity_acoustic.toml").full_hash() == (
        "88a887ad79d75388f53dd6e1352a787c4d218c01b66207e250a8cd95f5a5ea85"
    )
    assert load_scenario(scenarios / "whisper-asr.toml").full_hash() == (
        "47dc0b6ac1399a018f67f3ff18f3a5ebfce0d8b259ab01c70fa443b77ed62ac8"
    )


def test_hash_neutral_field_at_default_leaves_the_identity_alone():
    from pydantic import Field

    from simfl.schema.base import HASH_NEUTRAL, Section, identity_dump

    class Old(Section):
        a: int = 1

    class New(Section):
        a: int = 1
        b: int = Field(default=0, json_schema_extra=HASH_NEUTRAL)

    assert identity_dump(New()) == identity_dump(Old()) == {"a": 1}
    assert identity_dump(New(b=2)) == {"a": 1, "b": 2}


def test_local_layers_are_checked_against_the_model_in_preparation():
    """Schema phase accepts any pattern (no model is built); preparation names key and file."""
    from simfl.pipeline import check_model_names

    raw = tomllib.loads(_quickstart_text())
    raw["strategy"] = {"name": "fedper", "local_layers": ["nosuchlayer"]}
    scenario = scenario_from_dict(raw, "quickstart.toml")
    with pytest.raises(ScenarioError) as caught:
        check_model_names(scenario)
    error = caught.value.with_source(scenario.source)
    assert error.key == "strategy.local_layers"
    assert str(error).startswith(
        "quickstart.toml: key 'strategy.local_layers': ['nosuchlayer'] match no parameter"
    )


#: Pinned hashes of quickstart and systems-stragglers with a crash probability of 0.3, spelled
#: as the deprecated ``[faults]`` table or as ``[systems.faults]``: both spellings give them.
FAULTS_HASHES = {
    "quickstart.toml": "3f9ccf9cec05c2057b8902e2fab1f66d82a879d20f2f9e44cf34d2b6da901be4",
    "systems-stragglers.toml": "84f66752abb7ade16aeb882bb87278781a0c26530369053961ea082566ad8497",
}


@pytest.mark.parametrize("name", sorted(FAULTS_HASHES))
def test_faults_table_is_an_alias_of_systems_faults_with_the_same_hash(tmp_path, name):
    text = (QUICKSTART.parent / name).read_text()
    old = load_scenario(_write(tmp_path, text + "\n[faults]\nclient_crash_probability = 0.3\n"))
    new = load_scenario(QUICKSTART.parent / name, ["systems.faults.client_crash_probability=0.3"])
    assert old.systems.faults.client_crash_probability == 0.3
    assert old.full_hash() == new.full_hash() == FAULTS_HASHES[name]
    assert len(old.deprecations) == 1 and "[faults]" in old.deprecations[0]
    assert not new.deprecations
    # crashes alone simulate no systems: no round planner, no clock
    assert not load_scenario(QUICKSTART, ["faults.client_crash_probability=0.3"]).systems.enabled


def test_validate_says_the_old_faults_spelling_is_deprecated_in_one_line(tmp_path, cli):
    path = _write(tmp_path, _quickstart_text() + "\n[faults]\nclient_crash_probability = 0.1\n")
    done = cli("validate", path)
    assert done.returncode == 0
    assert done.stderr.strip().splitlines() == [
        "bad.toml: [faults] client_crash_probability is deprecated: write [systems.faults] "
        "client_crash_probability"
    ]
    assert "client_crash_probability = 0.1" in done.stdout  # resolved under [systems.faults]
    assert "[faults]" not in done.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "[faults]\nclient_crash_probability = 0.1\n[systems.faults]\n"
            "client_crash_probability = 0.2\n",
            "bad.toml: key 'faults.client_crash_probability': also set as "
            "systems.faults.client_crash_probability; keep only "
            "systems.faults.client_crash_probability",
        ),
        (
            "[faults]\ncrash = 0.1\n",
            "bad.toml: key 'faults': unknown key 'crash': [faults] holds only "
            "client_crash_probability (an old spelling of "
            "systems.faults.client_crash_probability)",
        ),
    ],
)
def test_faults_alias_conflicts_are_one_line_errors(tmp_path, extra, message):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_write(tmp_path, _quickstart_text() + "\n" + extra))
    assert str(caught.value) == message
