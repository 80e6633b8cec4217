"""Offline LiRA: its scoring exactly, and the audit end to end on a real Flower/Ray run of the
tiny scenario trained to memorise (the session's Ray runtime)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from simfl.privacy.audit import attack_scores
from simfl.privacy.lira import lira_scores, logit_confidence, split_by_speaker


def test_lira_scores_use_the_out_mean_per_clip_and_the_pooled_std():
    shadows = np.array([[0.0, 10.0], [2.0, 12.0]])  # per-clip means 1 and 11; variances 2 and 2
    scores = lira_scores(np.array([3.0, 11.0]), shadows)
    np.testing.assert_allclose(scores, [2 / np.sqrt(2), 0.0])
    # A hard clip (low confidence everywhere) the target knows beats an easy one it does not:
    # the loss threshold would rank them the other way round.
    assert attack_scores(scores[:1], scores[1:]).auc == 1.0
    assert lira_scores(np.array([np.nan, 1.0]), shadows)[0] == -np.inf


def test_logit_confidence_is_log_odds_of_the_true_label():
    model = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
    features = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    labels = torch.tensor([0, 2])
    p = torch.softmax(features.double(), dim=1)[[0, 1], [0, 2]].numpy()
    np.testing.assert_allclose(
        logit_confidence(model, features, labels, 1), np.log(p / (1 - p)), rtol=1e-12
    )


def test_split_by_speaker_keeps_each_speaker_on_one_side():
    speakers = np.array(["a", "a", "b", "c", "c", "d"])
    rows, labels = np.arange(6), np.zeros(6, int)
    split = split_by_speaker(rows, labels, speakers, seed=0)
    shadow, target = set(speakers[split.shadow_rows]), set(speakers[split.target_rows])
    assert len(shadow) == 2 and shadow.isdisjoint(target) and shadow | target == set("abcd")
    again = split_by_speaker(rows, labels, speakers, seed=0)
    assert np.array_equal(again.shadow_rows, split.shadow_rows)  # seeded


@pytest.mark.ray
def test_lira_audit_scores_only_speakers_no_shadow_saw(tmp_path, tiny_cache, ray_runtime):
    """The audit through a real run: non-members all come from the held-out speakers that
    trained no shadow (the tiny model is too weak to memorise; README "Privacy" has LiRA's
    figures on scenarios/privacy-audit.toml)."""
    from tiny_scenario import tiny_scenario

    from simfl.pipeline import prepare_scenario_data
    from simfl.run import RunOptions, run_scenario

    scenario = tiny_scenario(
        tmp_path / "results",
        tiny_cache,
        privacy={"audit": {"attack": "lira", "shadow_models": 2, "shadow_epochs": 2}},
    )
    outcome = run_scenario(scenario, RunOptions(wandb_mode="disabled", session=ray_runtime))
    final = outcome.summary["final"]
    test = prepare_scenario_data(scenario).test
    speakers = test.metadata["speaker_id"].to_numpy()
    split = split_by_speaker(test.rows, test.labels, speakers, scenario.scenario.seed)
    # 2 held-out speakers: one trains the shadows, the other's 12 clips are the non-members.
    assert len(np.unique(speakers)) == 2 and len(split.target_rows) == 12
    assert final["mia_non_members"] == final["mia_members"] == 12
    assert outcome.summary["privacy"]["audit"] == "lira"
