"""Name -> schema and factory tables for datasets, partitioners, models and strategies.

Each entry's ``config`` is a pydantic model whose tag field (``dataset``, ``kind`` or ``name``)
holds its registry name as a ``Literal``; :mod:`simfl.config` builds tagged unions from them, so a
new family member is one entry here and nothing else.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from partitioners.compose import ComposeConfig, ComposePartitioner
from partitioners.dirichlet import DirichletConfig, DirichletPartitioner
from partitioners.feature_shift import AcousticConfig, AcousticPartitioner
from partitioners.iid import IidConfig, IidPartitioner
from partitioners.label_shift import (
    PathologicalConfig,
    PathologicalPartitioner,
    ShardsConfig,
    ShardsPartitioner,
)
from partitioners.natural import (
    AccentConfig,
    AccentPartitioner,
    SpeakerConfig,
    SpeakerGroupsConfig,
    SpeakerGroupsPartitioner,
    SpeakerPartitioner,
)
from partitioners.quantity import (
    DirichletSizesConfig,
    LogNormalConfig,
    PowerLawConfig,
    QuantityPartitioner,
)
from simfl.data.sources import (
    AudioFolderData,
    SpeechCommandsData,
    SynthCommandsData,
    SynthPhrasesData,
    load_audiofolder_source,
    load_phrases_source,
    load_speech_commands_source,
    load_synth_source,
)
from simfl.models.kws_cnn import KwsCnnParams, build_kws_cnn
from simfl.models.whisper_asr import WhisperAsrParams, build_whisper_asr
from simfl.models.whisper_kws import WhisperKwsParams, build_whisper_kws
from simfl.strategies.adaptive import (
    FedAdagradConfig,
    FedAdamConfig,
    FedYogiConfig,
    build_fedadagrad,
    build_fedadam,
    build_fedyogi,
)
from simfl.strategies.fedavg import FedAvgConfig, build_fedavg
from simfl.strategies.fedavgm import FedAvgMConfig, build_fedavgm
from simfl.strategies.fedprox import FedProxConfig, build_fedprox
from simfl.strategies.personalized import FedBNConfig, FedPerConfig
from simfl.strategies.qfedavg import QFedAvgConfig, build_qfedavg
from simfl.strategies.robust import (
    BulyanConfig,
    FedMedianConfig,
    FedTrimmedAvgConfig,
    KrumConfig,
    MultiKrumConfig,
    build_bulyan,
    build_fedmedian,
    build_fedtrimmedavg,
    build_krum,
    build_multikrum,
)


class KwsCnnConfig(KwsCnnParams):
    """``[model] name = "kws-cnn"`` plus the CNN's own parameters."""

    name: Literal["kws-cnn"]


@dataclass(frozen=True)
class Entry:
    name: str
    config: type[BaseModel]
    factory: Callable[..., Any]
    summary: str
    task: str = "classification"  # models only: "classification" or "transcription"


DATASETS: dict[str, Entry] = {
    "synth-commands": Entry(
        "synth-commands",
        SynthCommandsData,
        load_synth_source,
        "Speech Commands words synthesized offline with eSpeak NG (many synthetic speakers)",
    ),
    "speech-commands": Entry(
        "speech-commands",
        SpeechCommandsData,
        load_speech_commands_source,
        "Google Speech Commands v0.02 from a local copy (extracted archive or Hub Parquet)",
    ),
    "audiofolder": Entry(
        "audiofolder",
        AudioFolderData,
        load_audiofolder_source,
        "any local <split>/<label>/<audio> folder (metadata.csv for speakers), read with soundfile",
    ),
    "synth-phrases": Entry(
        "synth-phrases",
        SynthPhrasesData,
        load_phrases_source,
        "transcribed command phrases and digit strings by the same synthetic speakers (ASR)",
    ),
}

PARTITIONERS: dict[str, Entry] = {
    "iid": Entry("iid", IidConfig, IidPartitioner.from_config, "uniform random split"),
    "dirichlet": Entry(
        "dirichlet",
        DirichletConfig,
        DirichletPartitioner.from_config,
        "label shift: per-class client shares drawn from Dirichlet(alpha)",
    ),
    "pathological": Entry(
        "pathological",
        PathologicalConfig,
        PathologicalPartitioner.from_config,
        "label shift: exactly k labels per client",
    ),
    "shards": Entry(
        "shards",
        ShardsConfig,
        ShardsPartitioner.from_config,
        "label shift: label-sorted shards, shards_per_client each",
    ),
    "powerlaw": Entry(
        "powerlaw",
        PowerLawConfig,
        QuantityPartitioner.from_config,
        "quantity skew: Pareto(exponent) client sizes above min_size",
    ),
    "lognormal": Entry(
        "lognormal",
        LogNormalConfig,
        QuantityPartitioner.from_config,
        "quantity skew: log-normal(sigma) client sizes above min_size",
    ),
    "dirichlet-sizes": Entry(
        "dirichlet-sizes",
        DirichletSizesConfig,
        QuantityPartitioner.from_config,
        "quantity skew: Dirichlet(alpha) client size shares above min_size",
    ),
    "speaker": Entry(
        "speaker", SpeakerConfig, SpeakerPartitioner.from_config, "natural: one speaker per client"
    ),
    "speaker-groups": Entry(
        "speaker-groups",
        SpeakerGroupsConfig,
        SpeakerGroupsPartitioner.from_config,
        "natural: group_size speakers per client",
    ),
    "accent": Entry(
        "accent",
        AccentConfig,
        AccentPartitioner.from_config,
        "natural feature shift: each client speaks one accent (or voice family)",
    ),
    "acoustic": Entry(
        "acoustic",
        AcousticConfig,
        AcousticPartitioner.from_config,
        "feature shift: a recording condition per client (noise, band, gain, speed, reverb)",
    ),
    "compose": Entry(
        "compose",
        ComposeConfig,
        ComposePartitioner.from_config,
        "label shift x quantity skew x acoustic feature shift",
    ),
}

MODELS: dict[str, Entry] = {
    "kws-cnn": Entry("kws-cnn", KwsCnnConfig, build_kws_cnn, "small CNN over log-mel features"),
    "whisper-kws": Entry(
        "whisper-kws",
        WhisperKwsParams,
        build_whisper_kws,
        "Whisper encoder (frozen by default) + conv/linear head over Whisper log-mels",
    ),
    "whisper-asr": Entry(
        "whisper-asr",
        WhisperAsrParams,
        build_whisper_asr,
        "Whisper seq2seq speech-to-text (greedy decoding, WER/CER) on transcribed clips",
        task="transcription",
    ),
}

STRATEGIES: dict[str, Entry] = {
    entry.name: entry
    for entry in (
        Entry("fedavg", FedAvgConfig, build_fedavg, "Federated Averaging (McMahan 2017)"),
        Entry("fedavgm", FedAvgMConfig, build_fedavgm, "FedAvg with server momentum (Hsu 2019)"),
        Entry("fedprox", FedProxConfig, build_fedprox, "proximal term mu/2||w-w_g||^2 (Li 2020)"),
        Entry("fedadam", FedAdamConfig, build_fedadam, "adaptive server Adam (Reddi 2021)"),
        Entry("fedyogi", FedYogiConfig, build_fedyogi, "adaptive server Yogi (Reddi 2021)"),
        Entry("fedadagrad", FedAdagradConfig, build_fedadagrad, "server Adagrad (Reddi 2021)"),
        Entry("fedmedian", FedMedianConfig, build_fedmedian, "coordinate-wise median (Yin 2018)"),
        Entry(
            "fedtrimmedavg",
            FedTrimmedAvgConfig,
            build_fedtrimmedavg,
            "coordinate-wise trimmed mean (Yin 2018)",
        ),
        Entry("krum", KrumConfig, build_krum, "Byzantine-robust selection (Blanchard 2017)"),
        Entry("multikrum", MultiKrumConfig, build_multikrum, "mean of best Krum scores"),
        Entry("bulyan", BulyanConfig, build_bulyan, "Krum + trimmed median (El Mhamdi 2018)"),
        Entry("qfedavg", QFedAvgConfig, build_qfedavg, "fair q-FFL weighting (Li 2020)"),
        Entry("fedbn", FedBNConfig, build_fedavg, "FedAvg, BatchNorm kept local (Li 2021)"),
        Entry("fedper", FedPerConfig, build_fedavg, "FedAvg, head kept local (Arivazhagan 2019)"),
    )
}

TABLES: dict[str, dict[str, Entry]] = {
    "datasets": DATASETS,
    "partitioners": PARTITIONERS,
    "models": MODELS,
    "strategies": STRATEGIES,
}


def _configs(table: dict[str, Entry]) -> tuple[type[BaseModel], ...]:
    return tuple(entry.config for entry in table.values())


def dataset_configs() -> tuple[type[BaseModel], ...]:
    return _configs(DATASETS)


def partitioner_configs() -> tuple[type[BaseModel], ...]:
    return _configs(PARTITIONERS)


def model_configs() -> tuple[type[BaseModel], ...]:
    return _configs(MODELS)


def strategy_configs() -> tuple[type[BaseModel], ...]:
    return _configs(STRATEGIES)


def tags_of(model: type[BaseModel]) -> tuple[str, ...]:
    """The registry names a config class answers to (the values of its Literal tag field)."""
    for field_name in ("dataset", "kind", "name"):
        field = model.model_fields.get(field_name)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return tuple(typing.get_args(field.annotation))
    return ()
