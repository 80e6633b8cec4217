"""Exact splits and conditions for fixed seeds, pinned so that refactors cannot move them.

The values are pinned (same algorithm, same seeds, same result): a scenario must keep its
partition, and a cached partition its meaning.
"""

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from partitioners import params
from partitioners.compose import ComposePartitioner
from partitioners.dirichlet import DirichletPartitioner
from partitioners.feature_shift import AcousticPartitioner, client_condition
from partitioners.iid import IidPartitioner
from partitioners.label_shift import PathologicalPartitioner, ShardsPartitioner
from partitioners.natural import AccentPartitioner, SpeakerGroupsPartitioner, SpeakerPartitioner
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


def _compose(config: dict) -> params.ComposeParams:
    return params.ComposeParams.model_validate(config)


FULL_COMPOSE = {
    "label": {"alpha": 0.5, "min_size": 5},
    "quantity": {"kind": "lognormal", "sigma": 0.5, "min_size": 10},
    "acoustic": {"severity": 0.5},
}

#: Each partitioner as pinned; what it must give is in ``pinned_splits.json``: the split's
#: sha256 prefix, the first six clients' sizes and the first index of each.
PINNED = {
    "iid": lambda: IidPartitioner(20, params.IidParams(), SEED),
    "dirichlet": lambda: DirichletPartitioner(20, params.DirichletParams(alpha=0.5), SEED),
    "dirichlet-balanced": lambda: DirichletPartitioner(
        20, params.DirichletParams(alpha=0.5, self_balancing=True), SEED
    ),
    "pathological": lambda: PathologicalPartitioner(20, params.PathologicalParams(), SEED),
    "shards": lambda: ShardsPartitioner(20, params.ShardsParams(), SEED),
    "powerlaw": lambda: QuantityPartitioner(20, params.PowerLawParams(), SEED),
    "lognormal": lambda: QuantityPartitioner(20, params.LogNormalParams(), SEED),
    "dirichlet-sizes": lambda: QuantityPartitioner(20, params.DirichletSizesParams(), SEED),
    "speaker": lambda: SpeakerPartitioner(40, params.SpeakerParams(), SEED),
    "speaker-groups": lambda: SpeakerGroupsPartitioner(10, params.SpeakerGroupsParams(), SEED),
    "accent": lambda: AccentPartitioner(10, params.AccentParams(by="accent"), SEED),
    "accent-by-voice": lambda: AccentPartitioner(10, params.AccentParams(by="voice"), SEED),
    "acoustic": lambda: AcousticPartitioner(20, params.AcousticParams(), SEED),
    "compose": lambda: ComposePartitioner(20, _compose(FULL_COMPOSE), SEED),
    "compose-quantity-only": lambda: ComposePartitioner(
        20, _compose({"quantity": {"kind": "powerlaw"}}), SEED
    ),
}
EXPECTED = json.loads((Path(__file__).parent / "pinned_splits.json").read_text())


def _digest(parts: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.asarray(part, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("name", PINNED)
def test_split_is_the_pinned_one(name):
    expected = EXPECTED[name]
    labels, metadata = _data()
    parts = PINNED[name]().split(labels, metadata)
    assert [len(p) for p in parts[:6]] == expected["first_sizes"]
    assert [int(p[0]) for p in parts[:6]] == expected["first_indices"]
    assert _digest(parts) == expected["digest"]


def test_dirichlet_alpha_half_twenty_clients_pinned():
    labels = np.random.default_rng(0).integers(0, 12, size=3000)
    parts = DirichletPartitioner(20, params.DirichletParams(alpha=0.5, min_size=10), 42).split(
        labels
    )
    assert [len(p) for p in parts] == [
        208, 203, 216, 129, 191, 89, 125, 132, 117, 122,
        161, 112, 135, 163, 150, 90, 158, 193, 130, 176,
    ]  # fmt: skip
    assert [int(p[0]) for p in parts[:5]] == [3, 1, 10, 16, 23]


def test_acoustic_conditions_pinned():
    (first, *_) = AcousticPartitioner(20, params.AcousticParams(), SEED).client_conditions()
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
    every_effect = params.AcousticParams(
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
