"""Exact splits and conditions for fixed seeds, pinned so that refactors cannot move them.

The values were computed before partitioners/ became independent of simfl (same algorithm,
same seeds): a scenario must keep its partition, and a cached partition its meaning.
"""

import dataclasses
import hashlib

import numpy as np
import pandas as pd
import pytest

from partitioners.compose import ComposePartitioner
from partitioners.dirichlet import DirichletPartitioner
from partitioners.feature_shift import AcousticPartitioner, client_condition
from partitioners.iid import IidPartitioner
from partitioners.label_shift import PathologicalPartitioner, ShardsPartitioner
from partitioners.natural import AccentPartitioner, SpeakerGroupsPartitioner, SpeakerPartitioner
from partitioners.params import (
    AccentParams,
    AcousticParams,
    ComposeParams,
    DirichletParams,
    DirichletSizesParams,
    IidParams,
    LogNormalParams,
    PathologicalParams,
    PowerLawParams,
    ShardsParams,
    SpeakerGroupsParams,
    SpeakerParams,
)
from partitioners.quantity import QuantityPartitioner

SEED = 1234


def _data() -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(2024)
    labels = rng.integers(0, 12, size=2400)
    speakers = rng.integers(0, 40, size=2400)
    speakers[:40] = np.arange(40)
    metadata = pd.DataFrame(
        {
            "speaker_id": [f"s{s:02d}" for s in speakers],
            "accent": [f"a{s % 4}" for s in speakers],
            "voice": [f"v{s % 5}" for s in speakers],
        }
    )
    return labels, metadata


def _compose(config: dict) -> ComposeParams:
    return ComposeParams.model_validate(config)


FULL_COMPOSE = {
    "label": {"alpha": 0.5, "min_size": 5},
    "quantity": {"kind": "lognormal", "sigma": 0.5, "min_size": 10},
    "acoustic": {"severity": 0.5},
}

# name -> (partitioner, sha256 of the split, first six sizes, first index of the first six)
PINNED = {
    "iid": (
        lambda: IidPartitioner(20, IidParams(), SEED),
        "60934cb27150f4b0",
        [120] * 6,
        [23, 6, 51, 35, 12, 45],
    ),
    "dirichlet": (
        lambda: DirichletPartitioner(20, DirichletParams(alpha=0.5), SEED),
        "bb10304a96cb08b4",
        [122, 107, 122, 106, 147, 81],
        [23, 26, 6, 30, 2, 34],
    ),
    "dirichlet-balanced": (
        lambda: DirichletPartitioner(20, DirichletParams(alpha=0.5, self_balancing=True), SEED),
        "f0082fd3806c3f8f",
        [128, 111, 125, 108, 122, 88],
        [23, 26, 6, 30, 2, 34],
    ),
    "pathological": (
        lambda: PathologicalPartitioner(20, PathologicalParams(), SEED),
        "33081d0315b7ad11",
        [100, 106, 135, 126, 132, 139],
        [32, 26, 30, 95, 2, 6],
    ),
    "shards": (
        lambda: ShardsPartitioner(20, ShardsParams(), SEED),
        "253dc4e8e38c4190",
        [120] * 6,
        [22, 50, 20, 0, 5, 10],
    ),
    "powerlaw": (
        lambda: QuantityPartitioner(20, PowerLawParams(), SEED),
        "920dcd8e63810a7f",
        [82, 52, 98, 55, 60, 45],
        [9, 92, 15, 13, 45, 19],
    ),
    "lognormal": (
        lambda: QuantityPartitioner(20, LogNormalParams(), SEED),
        "176472a1113264e9",
        [20, 61, 111, 66, 124, 894],
        [105, 9, 15, 13, 19, 3],
    ),
    "dirichlet-sizes": (
        lambda: QuantityPartitioner(20, DirichletSizesParams(), SEED),
        "4e251957868606c7",
        [135, 69, 159, 77, 91, 45],
        [9, 15, 13, 58, 5, 4],
    ),
    "speaker": (
        lambda: SpeakerPartitioner(40, SpeakerParams(), SEED),
        "5fdcd73b121f8274",
        [64, 64, 72, 63, 55, 65],
        [11, 15, 30, 12, 10, 25],
    ),
    "speaker-groups": (
        lambda: SpeakerGroupsPartitioner(10, SpeakerGroupsParams(), SEED),
        "65bbffe74e849f21",
        [263, 225, 240, 246, 231, 235],
        [11, 10, 5, 0, 3, 2],
    ),
    "accent": (
        lambda: AccentPartitioner(10, AccentParams(by="accent"), SEED),
        "5f599f6ed7b58f17",
        [276, 308, 181, 161, 292, 242],
        [3, 7, 8, 4, 6, 0],
    ),
    "accent-by-voice": (
        lambda: AccentPartitioner(10, AccentParams(by="voice"), SEED),
        "5186249bca858ad9",
        [238, 206, 235, 244, 241, 271],
        [4, 9, 5, 1, 3, 0],
    ),
    "acoustic": (
        lambda: AcousticPartitioner(20, AcousticParams(), SEED),
        "60934cb27150f4b0",
        [120] * 6,
        [23, 6, 51, 35, 12, 45],
    ),
    "compose": (
        lambda: ComposePartitioner(20, _compose(FULL_COMPOSE), SEED),
        "77b95b315bb9809d",
        [48, 88, 149, 98, 192, 260],
        [83, 26, 6, 31, 2, 17],
    ),
    "compose-quantity-only": (
        lambda: ComposePartitioner(20, _compose({"quantity": {"kind": "powerlaw"}}), SEED),
        "920dcd8e63810a7f",
        [82, 52, 98, 55, 60, 45],
        [9, 92, 15, 13, 45, 19],
    ),
}


def _digest(parts: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.asarray(part, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("name", PINNED)
def test_split_is_the_pinned_one(name):
    factory, digest, sizes, firsts = PINNED[name]
    labels, metadata = _data()
    parts = factory().split(labels, metadata)
    assert [len(p) for p in parts[:6]] == sizes
    assert [int(p[0]) for p in parts[:6]] == firsts
    assert _digest(parts) == digest


def test_dirichlet_alpha_half_twenty_clients_pinned():
    labels = np.random.default_rng(0).integers(0, 12, size=3000)
    parts = DirichletPartitioner(20, DirichletParams(alpha=0.5, min_size=10), 42).split(labels)
    assert [len(p) for p in parts] == [
        208, 203, 216, 129, 191, 89, 125, 132, 117, 122,
        161, 112, 135, 163, 150, 90, 158, 193, 130, 176,
    ]  # fmt: skip
    assert [int(p[0]) for p in parts[:5]] == [3, 1, 10, 16, 23]


def test_acoustic_conditions_pinned():
    (first, *_) = AcousticPartitioner(20, AcousticParams(), SEED).client_conditions()
    assert dataclasses.asdict(first) == {
        "snr_db": 20.159121935729935,
        "highpass_hz": 68.04854880667952,
        "lowpass_hz": 7315.87680740449,
        "gain_db": -2.4635811871315108,
        "speed": 1.0307696732147786,
        "rt60_s": None,
    }
    composed = ComposePartitioner(20, _compose(FULL_COMPOSE), SEED).client_conditions()
    assert dataclasses.asdict(composed[3]) == {
        "snr_db": 24.69768775597555,
        "highpass_hz": 167.71569533159453,
        "lowpass_hz": 6719.555714542606,
        "gain_db": 3.91666215206277,
        "speed": 1.0260041317109305,
        "rt60_s": None,
    }
    every_effect = AcousticParams(
        severity=0.8, effects=("noise", "band", "gain", "speed", "reverb")
    )
    assert dataclasses.asdict(client_condition(every_effect, 7, 5)) == {
        "snr_db": 21.382286461554116,
        "highpass_hz": 224.2741552596016,
        "lowpass_hz": 4699.278290829688,
        "gain_db": -9.293368552876252,
        "speed": 0.9662121380618557,
        "rt60_s": 0.06564313887133424,
    }
