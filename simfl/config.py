"""The scenario: one validated object from a TOML file (plus ``--set`` overrides) to the run.

Kind-dispatched tables are flat and tagged: ``[data] dataset = ...``, ``[partition] kind = ...``,
``[model] name = ...`` and ``[strategy] name = ...`` pick a schema from the registry, so each
family's parameters are checked by that family's own pydantic model.
"""

from __future__ import annotations

import hashlib
import json
import stat
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any

import tomli_w
from pydantic import BaseModel, Field, PrivateAttr, ValidationError, model_validator

from simfl import registry
from simfl.errors import ScenarioError
from simfl.schema.base import HASH_NEUTRAL, CrossTableRule, Section, identity_dump
from simfl.schema.messages import describe_validation_error
from simfl.schema.privacy import PrivacyConfig
from simfl.schema.sections import (
    ResourcesConfig,
    ScenarioMeta,
    TrackingConfig,
    TrainConfig,
)
from simfl.schema.slurm import SlurmConfig
from simfl.schema.systems import SystemsConfig

__all__ = ["HASH_NEUTRAL", "Scenario", "load_scenario", "scenario_from_dict"]


def _tagged(members: tuple[type[BaseModel], ...], tag: str) -> Any:
    """A discriminated union over registry entries (a single member needs no union)."""
    if len(members) == 1:
        return members[0]
    return Annotated[typing.Union[members], Field(discriminator=tag)]  # noqa: UP007


DataSection = _tagged(registry.configs(registry.DATASETS), "dataset")
PartitionSection = _tagged(registry.configs(registry.PARTITIONERS), "kind")
ModelSection = _tagged(registry.configs(registry.MODELS), "name")
StrategySection = _tagged(registry.configs(registry.STRATEGIES), "name")


class Scenario(Section):
    """A whole experiment. Built only through :func:`load_scenario` / :func:`scenario_from_dict`."""

    scenario: ScenarioMeta
    """The experiment's name, seed, number of rounds and description."""
    data: DataSection  # type: ignore[valid-type]
    """The dataset (picked by ``dataset``), its label view, clients and features."""
    partition: PartitionSection  # type: ignore[valid-type]
    """How the training clips are split among the clients (picked by ``kind``)."""
    model: ModelSection  # type: ignore[valid-type]
    """The model and its architecture (picked by ``name``)."""
    train: TrainConfig = TrainConfig()
    """What each sampled client does locally every round: epochs, batches, optimizer."""
    strategy: StrategySection  # type: ignore[valid-type]
    """The federated strategy (picked by ``name``), client sampling and partial sharing."""
    resources: ResourcesConfig = ResourcesConfig()
    """CPUs and GPUs per client actor, Ray's init arguments and the engine's limits."""
    systems: SystemsConfig = SystemsConfig()
    """Optional simulated devices, availability, deadlines, faults and attacks."""
    tracking: TrackingConfig = TrackingConfig()
    """Where results, caches, W&B and MLflow logs and checkpoints go; not the identity."""
    privacy: PrivacyConfig = PrivacyConfig()
    """Optional differential privacy, secure aggregation, HE and membership-inference audit."""
    slurm: SlurmConfig = SlurmConfig()
    """What one array task of ``simfl sweep --emit-slurm`` asks of the cluster; not the identity."""
    sweep: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    """``simfl sweep``'s grid: dotted key (or ``seeds``) -> values; ``simfl run`` ignores it."""

    #: The file (or sweep cell) this scenario came from, for error messages; not its identity.
    _source: str | None = PrivateAttr(default=None)
    #: Old spellings this scenario was written with, one line each (``simfl validate``).
    _deprecations: tuple[str, ...] = PrivateAttr(default=())

    @property
    def source(self) -> str | None:
        return self._source

    @property
    def deprecations(self) -> tuple[str, ...]:
        return self._deprecations

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        """Schema phase, cross-table: pure rules only (data-dependent ones run in preparation)."""
        if self.strategy.fraction_evaluate > 0 and self.data.local_test_fraction == 0:
            raise ValueError(
                "strategy.fraction_evaluate > 0 needs data.local_test_fraction > 0 "
                "(clients evaluate on their local test split); set one of them"
            )
        if self.strategy.min_available_nodes > self.data.num_clients:
            raise ValueError(
                f"strategy.min_available_nodes ({self.strategy.min_available_nodes}) exceeds "
                f"data.num_clients ({self.data.num_clients})"
            )
        for section in self.sections():
            section.check_scenario(self)
        return self

    def sections(self) -> list[CrossTableRule]:
        """Every table of the scenario, each able to check itself against the others."""
        return [
            getattr(self, name)
            for name in type(self).model_fields
            if isinstance(getattr(self, name), CrossTableRule)
        ]

    def identity(self) -> dict[str, Any]:
        """Everything that decides the numbers (tracking and slurm only decide where they go
        and on what)."""
        plain = self.model_copy(update={"systems": self.systems.without_phase_crashes()})
        identity = identity_dump(plain)
        for name in ("tracking", "slurm", "sweep"):
            identity.pop(name, None)
        # Where the [faults] alias puts it, so both spellings keep one hash.
        crash = self.systems.faults.client_crash_probability
        identity["faults"] = {"client_crash_probability": crash}
        return identity

    def full_hash(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def short_hash(self) -> str:
        return self.full_hash()[:8]

    def to_toml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        if not data["sweep"]:
            del data["sweep"]
        if self.slurm == SlurmConfig():
            del data["slurm"]
        return tomli_w.dumps(data)


# --------------------------------------------------------------------------- loading


#: A scenario is a few KiB; anything near this is not one (and would be read into memory).
MAX_SCENARIO_BYTES = 1 << 20
#: Tables and arrays nested deeper than this are not a scenario (and could exhaust the stack).
MAX_NESTING = 32
#: The tables every scenario needs, in the order an empty file's error lists them.
REQUIRED_SECTIONS = ("scenario", "data", "partition", "model", "strategy")


def read_toml_file(path: str | Path) -> dict[str, Any]:
    """The TOML table in ``path``, or a one-line ScenarioError naming the file and the problem.

    ``tomllib`` only parses text; what it leaves to the caller is refused here, before anything
    is read into memory or written: a missing file, a directory, a device or FIFO (reading
    would block or never end), no permission, a file over 1 MiB, NUL bytes (binary data),
    invalid UTF-8, and nesting deeper than :data:`MAX_NESTING` levels.
    """
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ScenarioError(f"{path}: is a directory, not a scenario file")
        if not stat.S_ISREG(info.st_mode):
            raise ScenarioError(f"{path}: not a regular file (a device, FIFO or socket)")
        if info.st_size > MAX_SCENARIO_BYTES:
            raise ScenarioError(f"{path}: {_too_big(info.st_size)}")
        with path.open("rb") as handle:
            data = handle.read(MAX_SCENARIO_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except OSError as err:  # permission, symlink loop, I/O error, name too long...
        raise ScenarioError(f"{path}: cannot read the scenario file: {err.strerror}") from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{path}: {_too_big(len(data))}")
    if b"\x00" in data:
        raise ScenarioError(f"{path.name}: not a text file (NUL bytes): a scenario is TOML text")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise ScenarioError(
            f"{path.name}: not UTF-8 text (invalid byte 0x{data[err.start]:02x} at offset "
            f"{err.start}); TOML files are UTF-8"
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path.name}: not valid TOML: {err}") from None
    except RecursionError:
        raise ScenarioError(f"{path.name}: {_too_deep()}") from None
    if nesting_depth(raw) > MAX_NESTING:
        raise ScenarioError(f"{path.name}: {_too_deep()}")
    return raw


def nesting_depth(value: Any) -> int:
    """How many tables and arrays deep ``value`` goes (iteratively: no recursion limit)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _too_big(size: int) -> str:
    return f"{size:,} bytes is too big for a scenario file (at most {MAX_SCENARIO_BYTES:,})"


def _too_deep() -> str:
    return f"tables or arrays nested more than {MAX_NESTING} levels deep; not a scenario"


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario file; every failure is a one-line ScenarioError."""
    path = Path(path)
    source = path.name
    raw = read_toml_file(path)
    for item in overrides or []:
        apply_override(raw, item, source)
    return scenario_from_dict(raw, source)


def scenario_from_dict(raw: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Schema phase: types, ranges, cross-table rules and names; touches no file or data."""
    raw, deprecations = resolve_aliases(raw, source)
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as err:
        raise ScenarioError(describe_validation_error(err, raw, source, Scenario)) from None
    scenario._source = source
    scenario._deprecations = deprecations
    return scenario


#: The old table ``[faults]``: its one key, and the key that holds it now.
FAULTS_ALIAS = ("client_crash_probability", "systems.faults.client_crash_probability")


def resolve_aliases(raw: dict[str, Any], source: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``raw`` with the old table ``[faults]`` moved into ``[systems.faults]`` (a copy, when
    there is one), and a line telling the user so. Another key in ``[faults]``, or the value
    set in both spellings, is a ScenarioError naming the key."""
    if "faults" not in raw:
        return raw, ()
    old_key, new_key = FAULTS_ALIAS
    old = raw["faults"]
    unknown = sorted(set(old) - {old_key}) if isinstance(old, dict) else ["(not a table)"]
    if unknown:
        raise ScenarioError(
            f"unknown key {unknown[0]!r}: [faults] holds only {old_key} (an old spelling of "
            f"{new_key})",
            key="faults",
            source=source,
        )
    systems = dict(raw.get("systems") or {})
    faults = systems.get("faults") or {}
    if not isinstance(faults, dict) or old_key in faults:
        raise ScenarioError(
            f"also set as {new_key}; keep only {new_key}", key=f"faults.{old_key}", source=source
        )
    if old_key in old:
        systems["faults"] = {**faults, old_key: old[old_key]}
    raw = {name: value for name, value in raw.items() if name != "faults"} | {"systems": systems}
    note = f"{source}: [faults] {old_key} is deprecated: write [systems.faults] {old_key}"
    return raw, (note,)


def parse_override(item: str, source: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` where value is read as TOML (numbers, booleans, lists) or else a string."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ScenarioError(f"{source}: --set {item!r}: expected dotted.key=value")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return key.split("."), value


def apply_override(raw: dict[str, Any], item: str, source: str) -> None:
    keys, value = parse_override(item, source)
    set_dotted(raw, ".".join(keys), value, f"{source}: --set {item!r}")


def set_dotted(raw: dict[str, Any], dotted: str, value: Any, context: str) -> None:
    """Set ``a.b.c`` in a raw scenario dict, creating tables on the way."""
    keys = dotted.split(".")
    node = raw
    for depth, part in enumerate(keys[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            prefix = ".".join(keys[: depth + 1])
            raise ScenarioError(f"{context}: '{prefix}' is a value, not a table")
        node = child
    node[keys[-1]] = value
