"""Strategy fidelity: the defaults are Flower's rules bit for bit and keep every hash; the
settings that select the papers' rules are real settings; every strategy has a fidelity note,
and the CLI and the documentation's fidelity page show the same notes.

The papers' rules themselves are tested against NumPy in tests/test_strategies_paper.py.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from flower_helpers import flower_task
from flwr.serverapp.strategy import Bulyan, FedAdagrad, FedAdam, FedYogi, MultiKrum
from test_strategies_paper import SHAPES, client_results, random_weights, run_round
from typer.testing import CliRunner

from simfl import registry
from simfl.cli import app
from simfl.config import scenario_from_dict
from simfl.errors import ScenarioError
from simfl.strategies.byzantine import BulyanSelection
from simfl.strategies.fedopt import BiasCorrection, SecondMomentStart, flower_bias_correction
from simfl.strategies.fidelity import COMMON, FIDELITY, markdown_table
from simfl.strategies.weighting import Weighting

pytestmark = pytest.mark.usefixtures("frozen_gc")  # Flower collects per reply

FIDELITY_PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "strategies.md"

PIN_BASE = {
    "scenario": {"name": "fidelity", "rounds": 4},
    "data": {"dataset": "synth-commands", "num_clients": 5},
    "partition": {"kind": "iid"},
    "model": {"name": "kws-cnn"},
    "train": {"lr": 0.05},
}
ROBUST_NODES = {"min_train_nodes": 5, "min_available_nodes": 5}
#: Pinned hashes: the fidelity settings, at their defaults, must not change a scenario's hash.
PINNED_HASHES = {
    "fedadam": "6c874598a8b27ffbc802170b96c96224bbddca701aac17b666b723d6fac40625",
    "fedadagrad": "3ecc845ed1f8a8ec97dceda5bb0ba27fbbe6565db7390e8e07dbebfdb6833511",
    "fedyogi": "17840193aa76d1a87d98d8bb8f44084b22e49f22ef2f64e02d69198ce4822067",
    "bulyan": "6daedb0576d9f54596adff0d77ce159e7b5a75457b492ccae3aed878f5266daa",
    "multikrum": "5d70f13d41f6c0ba001c42ce4f382b3e2cb3aecad9cd34af7a50abde34a55f76",
}


def pinned_scenario(name: str, **settings):
    nodes = ROBUST_NODES if name in ("bulyan", "multikrum") else {}
    return scenario_from_dict({**PIN_BASE, "strategy": {"name": name} | nodes | settings})


@pytest.fixture(autouse=True)
def _task():
    with flower_task():
        yield


# ----------------------------------------------------------------------- hashes


@pytest.mark.parametrize("name", sorted(PINNED_HASHES))
def test_fidelity_settings_at_their_defaults_keep_the_scenario_hash(name):
    assert pinned_scenario(name).full_hash() == PINNED_HASHES[name]


DEFAULTS_SPELT_OUT = {
    "fedadam": {"bias_correction": "flower", "v0": "zero", "weighting": "num_examples"},
    "fedadagrad": {"beta_1": 0.0, "v0": "zero", "weighting": "num_examples"},
    "fedyogi": {"v0": "zero", "weighting": "num_examples"},
    "multikrum": {"weighting": "num_examples"},
    "bulyan": {"selection": "multikrum"},
}
PAPER_CHOICES = {
    "fedadam": {"bias_correction": "none"},
    "fedadagrad": {"beta_1": 0.9},
    "fedyogi": {"v0": "tau_squared"},
    "multikrum": {"weighting": "uniform"},
    "bulyan": {"selection": "recursive_krum"},
}


@pytest.mark.parametrize("name", sorted(PINNED_HASHES))
def test_writing_the_default_keeps_the_hash_and_the_paper_choice_changes_it(name):
    assert pinned_scenario(name, **DEFAULTS_SPELT_OUT[name]).full_hash() == PINNED_HASHES[name]
    assert pinned_scenario(name, **PAPER_CHOICES[name]).full_hash() != PINNED_HASHES[name]


@pytest.mark.parametrize(
    ("name", "field", "choices"),
    [
        ("fedadam", "bias_correction", BiasCorrection),
        *[(name, "v0", SecondMomentStart) for name in ("fedadam", "fedyogi", "fedadagrad")],
        *[(n, "weighting", Weighting) for n in ("fedadam", "fedyogi", "fedadagrad", "multikrum")],
        ("bulyan", "selection", BulyanSelection),
    ],
)
def test_the_schema_offers_exactly_the_choices_the_rules_implement(name, field, choices):
    """The schema spells its choices out (it imports no Flower); the rules name theirs."""
    config = registry.STRATEGIES[name].config
    assert get_args(config.model_fields[field].annotation) == get_args(choices)


# ----------------------------------------------------------------------- defaults = Flower


def ours_and_flowers(name: str, num_clients: int):
    """Our strategy as the registry builds it at default settings, and Flower's own class
    given the same parameters."""
    nodes = {"min_train_nodes": num_clients, "min_available_nodes": num_clients}
    data = {**PIN_BASE["data"], "num_clients": num_clients}
    scenario = scenario_from_dict({**PIN_BASE, "data": data, "strategy": {"name": name} | nodes})
    config = scenario.strategy
    ours = registry.STRATEGIES[name].load()(config, scenario)
    sampling = config.sampling_kwargs()
    if name in ("fedadam", "fedyogi"):
        adaptive = {"beta_1": config.beta_1, "beta_2": config.beta_2}
        flower_class = FedAdam if name == "fedadam" else FedYogi
        flowers = flower_class(**sampling, eta=config.eta, tau=config.tau, **adaptive)
    elif name == "fedadagrad":
        flowers = FedAdagrad(**sampling, eta=config.eta, tau=config.tau)
    elif name == "multikrum":
        selecting = {"num_nodes_to_select": config.num_nodes_to_select}
        flowers = MultiKrum(**sampling, num_malicious_nodes=config.num_malicious_nodes, **selecting)
    else:
        flowers = Bulyan(**sampling, num_malicious_nodes=config.num_malicious_nodes)
    return ours, flowers


@pytest.mark.parametrize("name", ["fedadam", "fedadagrad", "fedyogi", "multikrum", "bulyan"])
def test_default_settings_run_flowers_own_rule_bit_for_bit(name):
    """Four rounds of the same replies into ours (built from the scenario) and into Flower's
    class: every global model is equal, element for element and in dtype."""
    sizes = [5, 1, 9, 2, 7, 3, 4][: 7 if name == "bulyan" else 5]
    ours, flowers = ours_and_flowers(name, len(sizes))
    rng = np.random.default_rng(3)
    global_w = {k: v.astype(np.float32) for k, v in random_weights(rng).items()}
    for server_round in range(1, 5):
        clients = [
            {k: v.astype(np.float32) for k, v in c.items()}
            for c in client_results(rng, global_w, len(sizes))
        ]
        got = run_round(ours, server_round, global_w, clients, sizes)
        expected = run_round(flowers, server_round, global_w, clients, sizes)
        for k in SHAPES:
            assert got[k].dtype == expected[k].dtype, k
            np.testing.assert_array_equal(got[k], expected[k], err_msg=k)
        global_w = {k: v.astype(np.float32) for k, v in got.items()}


# ----------------------------------------------------------------------- the notes


def test_every_strategy_has_a_fidelity_note():
    assert list(FIDELITY) == list(registry.STRATEGIES)


def paper_settings(name: str) -> dict:
    """A note's "paper's rule with" column, read as TOML (``key = value, key = value``)."""
    return tomllib.loads("\n".join(FIDELITY[name].paper_settings.split(", ")))


SELECTABLE = [name for name, note in FIDELITY.items() if "=" in note.paper_settings]


def test_the_notes_name_the_settings_this_issue_adds():
    assert SELECTABLE == ["fedadam", "fedyogi", "fedadagrad", "multikrum", "bulyan"]
    assert paper_settings("fedadam") == {
        "bias_correction": "none",
        "v0": "tau_squared",
        "weighting": "uniform",
    }


@pytest.mark.parametrize("name", SELECTABLE)
def test_the_paper_settings_in_each_note_are_valid_scenario_settings(name):
    scenario = pinned_scenario(name, **paper_settings(name))
    for key, value in paper_settings(name).items():
        assert getattr(scenario.strategy, key) == value


def test_fedadam_note_gives_flowers_bias_correction_schedule():
    """The numbers in the note are Flower's factor at beta_1 = 0.9, beta_2 = 0.99."""
    factor = [flower_bias_correction(t, 0.9, 0.99) for t in range(1, 201)]
    assert [round(f, 2) for f in factor[:4]] == [0.74, 0.64, 0.58, 0.54]
    assert (int(np.argmin(factor)) + 1, round(min(factor), 2)) == (12, 0.47)
    assert round(factor[99], 2) == 0.80
    assert "0.74, 0.64, 0.58, 0.54 η in rounds 1–4" in FIDELITY["fedadam"].differences[0]


def test_the_documentation_shows_the_fidelity_table_from_the_notes():
    text = FIDELITY_PAGE.read_text(encoding="utf-8")
    assert markdown_table() in text
    assert COMMON in text


def test_list_details_prints_every_note():
    result = CliRunner().invoke(app, ["list", "--details"], terminal_width=100)
    assert result.exit_code == 0, result.output
    for name, note in FIDELITY.items():
        assert f"\n{name}\n  paper: {note.paper}\n" in result.output
    assert 'paper\'s rule with: bias_correction = "none", v0 = "tau_squared"' in result.output
    plain = CliRunner().invoke(app, ["list"], terminal_width=100)
    assert "paper's rule with" not in plain.output


def test_a_bad_fidelity_setting_is_one_clear_line():
    with pytest.raises(ScenarioError) as error:
        pinned_scenario("fedadam", bias_correction="adam")
    assert str(error.value) == (
        "<scenario>: key 'strategy.bias_correction': Input should be 'flower' or 'none' "
        "(got 'adam')"
    )
