"""whisper-kws: offline presets, real from_pretrained from a local save, short inputs, freezing."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from simfl.errors import ScenarioError
from simfl.models.whisper_common import whisper_config
from simfl.models.whisper_kws import build_whisper_kws
from simfl.schema.model import WhisperKwsParams


def params(**kwargs) -> WhisperKwsParams:
    return WhisperKwsParams(name="whisper-kws", config_preset="test-small", **kwargs)


def trainable(model: torch.nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_random_preset_is_seeded_and_classifies_short_clips():
    builds = []
    for _ in range(2):
        torch.manual_seed(7)
        builds.append(build_whisper_kws(params(input_frames=100), 12))
    first, second = (m.state_dict() for m in builds)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert first["encoder.embed_positions.weight"].shape[0] == 50
    logits = builds[0](torch.randn(3, 80, 120))  # longer inputs are cropped to input_frames
    assert logits.shape == (3, 12)
    with pytest.raises(ValueError, match="the model needs 100"):
        builds[0](torch.randn(1, 80, 60))


def test_whisper_tiny_preset_has_real_dimensions():
    torch.manual_seed(0)
    model = build_whisper_kws(WhisperKwsParams(name="whisper-kws"), 12)
    config = model.encoder.config
    assert (config.d_model, config.encoder_layers, config.encoder_attention_heads) == (384, 4, 6)
    assert config.num_mel_bins == 80 and config.max_source_positions == 50


def test_encoder_frozen_by_default_and_unfreezing_options():
    torch.manual_seed(0)
    assert trainable(build_whisper_kws(params(), 5)) == {
        "head.conv.weight",
        "head.conv.bias",
        "head.linear.weight",
        "head.linear.bias",
    }
    top = trainable(build_whisper_kws(params(unfreeze_top_layers=1), 5))
    assert any(n.startswith("encoder.layers.1.") for n in top)
    assert not any(n.startswith("encoder.layers.0.") for n in top)
    assert "encoder.layer_norm.weight" in top
    everything = build_whisper_kws(params(train_all=True), 5)
    frozen = {n for n, p in everything.named_parameters() if not p.requires_grad}
    assert frozen == {"encoder.embed_positions.weight"}  # Whisper's fixed sinusoids
    with pytest.raises(ScenarioError, match="model.unfreeze_top_layers"):
        build_whisper_kws(params(unfreeze_top_layers=3), 5)


def test_from_pretrained_loads_a_saved_checkpoint_and_slices_positions(tmp_path):
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(3)
    full_params = params(input_frames=3000)
    config = whisper_config(
        full_params, vocab_size=60, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=1,
    )  # fmt: skip
    saved = WhisperForConditionalGeneration(config)
    saved.save_pretrained(tmp_path / "tiny-whisper")
    model = build_whisper_kws(params(pretrained=str(tmp_path / "tiny-whisper")), 4)
    reference = saved.get_encoder().state_dict()
    loaded = model.encoder.state_dict()
    assert torch.equal(loaded["embed_positions.weight"], reference["embed_positions.weight"][:50])
    for name in ("conv1.weight", "layers.1.fc2.weight", "layer_norm.bias"):
        assert torch.equal(loaded[name], reference[name]), name
    assert model(torch.randn(2, 80, 100)).shape == (2, 4)
    assert params(pretrained="x").init_description() == "pretrained x"
    assert params().init_description() == "random (preset test-small)"


def test_unreachable_pretrained_weights_give_one_scenario_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ScenarioError) as caught:
        build_whisper_kws(params(pretrained=str(tmp_path / "missing")), 3)
    message = str(caught.value)
    assert "model.pretrained" in message and "\n" not in message


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_frames": 101}, "even"),
        ({"input_frames": 4000}, "3000"),
        ({"pretrained": " "}, "model name or path"),
    ],
)
def test_bad_params_are_refused(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        params(**kwargs)
