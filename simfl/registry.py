"""Name -> schema and implementation tables for datasets, partitioners, models and strategies.

Each entry's ``config`` is a light pydantic section (:mod:`simfl.schema`) whose tag field
(``dataset``, ``kind`` or ``name``) holds its registry name as a ``Literal``; :mod:`simfl.config`
builds tagged unions from them. The implementation is named, not imported
(``"module:attribute"``), and loaded by :meth:`Entry.load` only when a run needs it, so
validating a scenario imports no torch, Flower or datasets. A new family member is one entry
here, its schema class and its module. Features of a run (privacy, systems, ...) and trackers
(W&B, MLflow) are named in :mod:`simfl.plugins`.
"""

from __future__ import annotations

import importlib
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from simfl.schema import data, model, partition, strategy, strategy_noniid


def load(implementation: str) -> Any:
    """The object named ``"package.module:attribute[.attribute]"``, its module imported now."""
    module_name, _, attributes = implementation.partition(":")
    target: Any = importlib.import_module(module_name)
    for attribute in attributes.split("."):
        target = getattr(target, attribute)
    return target


#: The round loop every strategy runs in unless its entry names another.
SYNCHRONOUS_LOOP = "simfl.engine.server_app:FederationLoop"


@dataclass(frozen=True)
class Entry:
    name: str
    config: type[BaseModel]
    implementation: str  # "package.module:attribute[.attribute]"
    summary: str
    task: str = "classification"  # models only: "classification" or "transcription"
    loop: str = SYNCHRONOUS_LOOP  # strategies only: the federation loop that runs it

    def load(self) -> Any:
        """The implementation (a loader, partitioner class, model or strategy builder)."""
        return load(self.implementation)

    def load_loop(self) -> Any:
        """The federation loop class (strategies only)."""
        return load(self.loop)


def _table(*entries: Entry) -> dict[str, Entry]:
    return {entry.name: entry for entry in entries}


DATASETS = _table(
    Entry(
        "synth-commands",
        data.SynthCommandsData,
        "simfl.data.sources:load_synth_source",
        "Speech Commands words synthesized offline with eSpeak NG (many synthetic speakers)",
    ),
    Entry(
        "speech-commands",
        data.SpeechCommandsData,
        "simfl.data.sources:load_speech_commands_source",
        "Google Speech Commands v0.02 from a local copy (extracted archive or Hub Parquet)",
    ),
    Entry(
        "audiofolder",
        data.AudioFolderData,
        "simfl.data.sources:load_audiofolder_source",
        "any local <split>/<label>/<audio> folder (metadata.csv for speakers), read with soundfile",
    ),
    Entry(
        "synth-phrases",
        data.SynthPhrasesData,
        "simfl.data.sources:load_phrases_source",
        "transcribed command phrases and digit strings by the same synthetic speakers (ASR)",
    ),
)

PARTITIONERS = _table(
    Entry("iid", partition.IidConfig, "partitioners.iid:IidPartitioner", "uniform random split"),
    Entry(
        "dirichlet",
        partition.DirichletConfig,
        "partitioners.dirichlet:DirichletPartitioner",
        "label shift: per-class client shares drawn from Dirichlet(alpha)",
    ),
    Entry(
        "pathological",
        partition.PathologicalConfig,
        "partitioners.label_shift:PathologicalPartitioner",
        "label shift: exactly k labels per client",
    ),
    Entry(
        "shards",
        partition.ShardsConfig,
        "partitioners.label_shift:ShardsPartitioner",
        "label shift: label-sorted shards, shards_per_client each",
    ),
    Entry(
        "powerlaw",
        partition.PowerLawConfig,
        "partitioners.quantity:QuantityPartitioner",
        "quantity skew: Pareto(exponent) client sizes above min_size",
    ),
    Entry(
        "lognormal",
        partition.LogNormalConfig,
        "partitioners.quantity:QuantityPartitioner",
        "quantity skew: log-normal(sigma) client sizes above min_size",
    ),
    Entry(
        "dirichlet-sizes",
        partition.DirichletSizesConfig,
        "partitioners.quantity:QuantityPartitioner",
        "quantity skew: Dirichlet(alpha) client size shares above min_size",
    ),
    Entry(
        "speaker",
        partition.SpeakerConfig,
        "partitioners.natural:SpeakerPartitioner",
        "natural: one speaker per client",
    ),
    Entry(
        "speaker-groups",
        partition.SpeakerGroupsConfig,
        "partitioners.natural:SpeakerGroupsPartitioner",
        "natural: group_size speakers per client",
    ),
    Entry(
        "accent",
        partition.AccentConfig,
        "partitioners.natural:AccentPartitioner",
        "natural feature shift: each client speaks one accent (or voice family)",
    ),
    Entry(
        "acoustic",
        partition.AcousticConfig,
        "partitioners.feature_shift:AcousticPartitioner",
        "feature shift: a recording condition per client (noise, band, gain, speed, reverb)",
    ),
    Entry(
        "compose",
        partition.ComposeConfig,
        "partitioners.compose:ComposePartitioner",
        "label shift x quantity skew x acoustic feature shift",
    ),
)

MODELS = _table(
    Entry(
        "kws-cnn",
        model.KwsCnnConfig,
        "simfl.models.kws_cnn:build_kws_cnn",
        "small CNN over log-mel features",
    ),
    Entry(
        "whisper-kws",
        model.WhisperKwsParams,
        "simfl.models.whisper_kws:build_whisper_kws",
        "Whisper encoder (frozen by default) + conv/linear head over Whisper log-mels",
    ),
    Entry(
        "whisper-asr",
        model.WhisperAsrParams,
        "simfl.models.whisper_asr:build_whisper_asr",
        "Whisper seq2seq speech-to-text (greedy decoding, WER/CER) on transcribed clips",
        task="transcription",
    ),
)

_S = "simfl.strategies"
STRATEGIES = _table(
    Entry(
        "fedavg",
        strategy.FedAvgConfig,
        f"{_S}.fedavg:build_fedavg",
        "Federated Averaging (McMahan 2017)",
    ),
    Entry(
        "fedavgm",
        strategy.FedAvgMConfig,
        f"{_S}.fedavgm:build_fedavgm",
        "FedAvg with server momentum (Hsu 2019)",
    ),
    Entry(
        "fedprox",
        strategy.FedProxConfig,
        f"{_S}.fedprox:build_fedprox",
        "proximal term mu/2||w-w_g||^2 (Li 2020)",
    ),
    Entry(
        "fedadam",
        strategy.FedAdamConfig,
        f"{_S}.adaptive:build_fedadam",
        "adaptive server Adam (Reddi 2021)",
    ),
    Entry(
        "fedyogi",
        strategy.FedYogiConfig,
        f"{_S}.adaptive:build_fedyogi",
        "adaptive server Yogi (Reddi 2021)",
    ),
    Entry(
        "fedadagrad",
        strategy.FedAdagradConfig,
        f"{_S}.adaptive:build_fedadagrad",
        "server Adagrad (Reddi 2021)",
    ),
    Entry(
        "fedmedian",
        strategy.FedMedianConfig,
        f"{_S}.robust:build_fedmedian",
        "coordinate-wise median (Yin 2018)",
    ),
    Entry(
        "fedtrimmedavg",
        strategy.FedTrimmedAvgConfig,
        f"{_S}.robust:build_fedtrimmedavg",
        "coordinate-wise trimmed mean (Yin 2018)",
    ),
    Entry(
        "krum",
        strategy.KrumConfig,
        f"{_S}.robust:build_krum",
        "Byzantine-robust selection (Blanchard 2017)",
    ),
    Entry(
        "multikrum",
        strategy.MultiKrumConfig,
        f"{_S}.robust:build_multikrum",
        "mean of best Krum scores",
    ),
    Entry(
        "bulyan",
        strategy.BulyanConfig,
        f"{_S}.robust:build_bulyan",
        "Krum + trimmed median (El Mhamdi 2018)",
    ),
    Entry(
        "qfedavg",
        strategy.QFedAvgConfig,
        f"{_S}.qfedavg:build_qfedavg",
        "fair q-FFL weighting (Li 2020)",
    ),
    Entry(
        "fedbn",
        strategy.FedBNConfig,
        f"{_S}.fedavg:build_fedavg",
        "FedAvg, BatchNorm kept local (Li 2021)",
    ),
    Entry(
        "fedper",
        strategy.FedPerConfig,
        f"{_S}.fedavg:build_fedavg",
        "FedAvg, head kept local (Arivazhagan 2019)",
    ),
    Entry(
        "fedbuff",
        strategy.FedBuffConfig,
        "simfl.systems.fedbuff:build_fedbuff",
        "asynchronous buffered aggregation, staleness-weighted (Nguyen 2022)",
        loop="simfl.systems.fedbuff:FedBuffLoop",
    ),
    Entry(
        "scaffold",
        strategy_noniid.ScaffoldConfig,
        f"{_S}.scaffold:build_scaffold",
        "control variates against client drift (Karimireddy 2020)",
    ),
    Entry(
        "feddyn",
        strategy_noniid.FedDynConfig,
        f"{_S}.feddyn:build_feddyn",
        "dynamic regularization of the clients (Acar 2021)",
    ),
    Entry(
        "moon",
        strategy_noniid.MoonConfig,
        f"{_S}.fedavg:build_fedavg",
        "FedAvg with a model-contrastive client loss (Li 2021, CVPR)",
    ),
    Entry(
        "ditto",
        strategy_noniid.DittoConfig,
        f"{_S}.fedavg:build_fedavg",
        "FedAvg plus a personal model per client, pulled towards it (Li 2021)",
    ),
    Entry(
        "pfedme",
        strategy_noniid.PFedMeConfig,
        f"{_S}.pfedme:build_pfedme",
        "personalization by Moreau envelopes (T. Dinh 2020)",
    ),
    Entry(
        "fednova",
        strategy_noniid.FedNovaConfig,
        f"{_S}.fednova:build_fednova",
        "updates normalized by each client's local work (Wang 2020)",
    ),
)

#: The tables a scenario names entries of, by the name ``simfl list`` gives each.
TABLES: dict[str, dict[str, Entry]] = {
    "datasets": DATASETS,
    "partitioners": PARTITIONERS,
    "models": MODELS,
    "strategies": STRATEGIES,
}


def configs(table: dict[str, Entry]) -> tuple[type[BaseModel], ...]:
    """The schema classes of a table, for a tagged union."""
    return tuple(entry.config for entry in table.values())


def tags_of(model_class: type[BaseModel]) -> tuple[str, ...]:
    """The registry names a config class answers to (the values of its Literal tag field)."""
    for field_name in ("dataset", "kind", "name"):
        field = model_class.model_fields.get(field_name)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return tuple(typing.get_args(field.annotation))
    return ()
