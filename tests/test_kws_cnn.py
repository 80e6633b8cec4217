"""Tests for simfl.models.kws_cnn."""

from __future__ import annotations

import pydantic
import pytest
import torch
from torch import nn

from simfl.models.kws_cnn import KwsCnn, PerUtteranceNorm, build_kws_cnn
from simfl.schema.model import KwsCnnParams

N_MELS, FRAMES = 40, 101


def test_params_defaults_and_validation() -> None:
    p = KwsCnnParams()
    assert p.channels == [16, 32] and p.kernel_size == 3
    assert p.dropout == 0.0 and p.normalize_input
    for bad in (
        {"channels": []},
        {"channels": [16, 0]},
        {"kernel_size": 4},
        {"dropout": 1.0},
        {"dropout": -0.1},
        {"extra": 1},
    ):
        with pytest.raises(pydantic.ValidationError):
            KwsCnnParams(**bad)
    with pytest.raises(pydantic.ValidationError):
        p.dropout = 0.5  # type: ignore[misc]


@pytest.mark.parametrize("shape", [(5, 1, N_MELS, FRAMES), (5, N_MELS, FRAMES)])
def test_output_shape(shape: tuple[int, ...]) -> None:
    model = build_kws_cnn(KwsCnnParams(), num_classes=12)
    assert model(torch.randn(*shape)).shape == (5, 12)


def test_rejects_bad_input_shape() -> None:
    model = build_kws_cnn(KwsCnnParams(), num_classes=12)
    with pytest.raises(ValueError):
        model(torch.randn(2, 3, N_MELS, FRAMES))


def test_reference_architecture_and_parameter_count() -> None:
    model = build_kws_cnn(KwsCnnParams(), num_classes=12)
    expected = (16 * 1 * 9 + 16) + (32 * 16 * 9 + 32) + (32 * 12 + 12)
    assert sum(p.numel() for p in model.parameters()) == expected == 5196
    layers = [type(m) for m in model.features]
    assert layers == [nn.Conv2d, nn.ReLU, nn.MaxPool2d] * 2
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert isinstance(model.head, nn.Linear) and model.head.in_features == 32


def test_state_dict_keys_are_stable() -> None:
    keys = list(build_kws_cnn(KwsCnnParams(channels=[8, 16, 24]), 4).state_dict())
    assert keys == [
        "features.conv1.weight",
        "features.conv1.bias",
        "features.conv2.weight",
        "features.conv2.bias",
        "features.conv3.weight",
        "features.conv3.bias",
        "head.weight",
        "head.bias",
    ]
    head = [n for n, _ in build_kws_cnn(KwsCnnParams(), 4).named_parameters() if "head" in n]
    assert head == ["head.weight", "head.bias"]


def test_deterministic_with_seed() -> None:
    x = torch.randn(3, N_MELS, FRAMES, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    a = build_kws_cnn(KwsCnnParams(dropout=0.2), 12).eval()
    torch.manual_seed(0)
    b = build_kws_cnn(KwsCnnParams(dropout=0.2), 12).eval()
    assert torch.equal(a(x), b(x))
    assert torch.equal(a(x), a(x))


def test_per_utterance_norm() -> None:
    x = torch.randn(4, 1, N_MELS, FRAMES) * torch.tensor([1.0, 5.0, 0.1, 3.0]).view(4, 1, 1, 1)
    y = PerUtteranceNorm()(x + 7.0)
    torch.testing.assert_close(y.mean(dim=(1, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        y.std(dim=(1, 2, 3), unbiased=False), torch.ones(4), atol=1e-3, rtol=0
    )
    constant = PerUtteranceNorm()(torch.full((1, 1, 4, 4), -13.8))
    assert torch.isfinite(constant).all() and constant.abs().max() < 1e-2
    # Per-clip: a clip's output does not depend on the rest of the batch.
    torch.testing.assert_close(PerUtteranceNorm()(x[:1]), PerUtteranceNorm()(x)[:1])
    # Gain/offset of the log-mel input do not change the model output.
    model = build_kws_cnn(KwsCnnParams(), 3).eval()
    torch.testing.assert_close(model(x), model(2.0 * x - 4.0), atol=1e-4, rtol=1e-4)


def test_normalize_input_off_is_identity() -> None:
    model = build_kws_cnn(KwsCnnParams(normalize_input=False), 3)
    assert isinstance(model.normalize, nn.Identity)


def textures(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Class-dependent local textures plus noise: learnable by a pooled CNN."""
    f = torch.arange(N_MELS).view(-1, 1).float()
    t = torch.arange(FRAMES).view(1, -1).float()
    patterns = torch.stack(
        [
            torch.cos(torch.pi * f).expand(N_MELS, FRAMES),  # horizontal stripes
            torch.cos(torch.pi * t).expand(N_MELS, FRAMES),  # vertical stripes
            torch.cos(torch.pi * (f + t)),  # checkerboard
            torch.sin(0.3 * f) * torch.sin(0.2 * t),  # smooth blobs
        ]
    )
    noise = torch.randn(len(labels), N_MELS, FRAMES, generator=generator)
    return patterns[labels] + 0.5 * noise


def test_overfits_tiny_batch() -> None:
    torch.manual_seed(0)
    y = torch.arange(16) % 4
    x = textures(y, torch.Generator().manual_seed(0))
    model: KwsCnn = build_kws_cnn(KwsCnnParams(), num_classes=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    first = loss_fn(model(x), y).item()
    for _ in range(50):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    final = loss_fn(model(x), y).item()
    assert final < 0.2 * first
    assert (model(x).argmax(dim=1) == y).all()


def test_frequency_bins_and_time_max_pool_widen_the_head():
    params = KwsCnnParams(channels=[16, 32, 64], freq_bins=5, time_pool="max")
    model = build_kws_cnn(params, 12)
    assert model.head.in_features == 64 * 5
    assert model(torch.zeros(3, 1, 40, 101)).shape == (3, 12)
    assert isinstance(model.pool, torch.nn.AdaptiveMaxPool2d)
