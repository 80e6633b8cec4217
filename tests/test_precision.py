"""``train.precision``: fp32 is bit-identical to the plain loop (pinned values); bf16 and
fp16 autocast (fp16 with a gradient scaler) train to finite losses on the CPU."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch
from test_config import QUICKSTART

from simfl.config import load_scenario
from simfl.errors import ScenarioError
from simfl.models.kws_cnn import build_kws_cnn
from simfl.schema.model import KwsCnnParams
from simfl.schema.sections import TrainConfig
from simfl.training import LoopStats, evaluate, train_epochs


def _train(precision: str | None) -> tuple[LoopStats, LoopStats, str]:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the threads the values were pinned with; actor code may set 1
    try:
        return _train_with(precision)
    finally:
        torch.set_num_threads(threads)


def _train_with(precision: str | None) -> tuple[LoopStats, LoopStats, str]:
    torch.manual_seed(0)
    model = build_kws_cnn(KwsCnnParams(channels=[4, 8], dropout=0.1), 4)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(40, 1, 40, 32, generator=generator)
    y = torch.randint(0, 4, (40,), generator=generator)
    extra = {} if precision is None else {"precision": precision}
    config = TrainConfig(local_epochs=2, batch_size=8, lr=0.1, momentum=0.9, **extra)
    stats = train_epochs(model, x, y, config, seed=7)
    at_eval = evaluate(model, x, y, 16, **({} if precision is None else {"precision": precision}))
    weights = b"".join(t.numpy().tobytes() for t in model.state_dict().values())
    return stats, at_eval, hashlib.sha256(weights).hexdigest()


def test_fp32_is_bit_identical_to_the_loops_before_precision():
    """Pinned values of the plain loop (no autocast, no scaler): fp32, like no precision at
    all, must give them bit for bit."""
    for precision in (None, "fp32"):
        stats, at_eval, digest = _train(precision)
        assert stats.loss.hex() == "0x1.6201770000000p+0" and stats.accuracy == 0.3
        assert at_eval.loss.hex() == "0x1.597f44ccccccdp+0" and at_eval.accuracy == 0.3
        assert digest == "e7465bd9b936dbc399a038c930c89fd9fb94ce01e4e7fa942d9c50049d1ec9eb"


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_to_finite_losses_on_cpu(precision):
    stats, at_eval, digest = _train(precision)
    assert math.isfinite(stats.loss) and math.isfinite(at_eval.loss)
    assert at_eval.loss < math.log(4)  # it learned something: below the uniform guess
    fp32_loss = _train("fp32")[1].loss
    assert at_eval.loss != fp32_loss and abs(at_eval.loss - fp32_loss) < 0.05  # autocast ran


def test_precision_is_hash_neutral_at_fp32_and_validated():
    default = load_scenario(QUICKSTART)
    assert load_scenario(QUICKSTART, ['train.precision="fp32"']).full_hash() == (
        default.full_hash()
    )
    assert load_scenario(QUICKSTART, ['train.precision="bf16"']).full_hash() != (
        default.full_hash()
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(QUICKSTART, ['train.precision="fp8"'])
    assert str(caught.value) == (
        "quickstart.toml: key 'train.precision': Input should be 'fp32', 'bf16' or 'fp16' "
        "(got 'fp8')"
    )
