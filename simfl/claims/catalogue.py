"""Published effects as paired experiments: claim files, their comparisons, and the catalogue.

A claim file is a scenario with a ``[sweep]`` over the factor the claims are about (the seeds
come from ``simfl claims --seeds``) and a ``[[claims]]`` array, one table per comparison::

    [[claims]]
    id = "label-shift-hurts-fedavg"
    statement = "Label shift hurts FedAvg: final accuracy at alpha = 0.1 is below alpha = 10"
    source = "McMahan et al. 2017; Hsu et al. 2019"
    outcome = "central_accuracy"          # any `simfl report --y` outcome
    better = { "partition.alpha" = 10.0 } # the cells expected to do better, by resolved keys
    worse = { "partition.alpha" = 0.1 }

A comparison may instead give ``terms``, a contrast of several cell groups with weights (an
interaction: SCAFFOLD's gap to IID against FedAvg's). Every arm is matched on the resolved
scenario of the cells (``strategy.name`` matches a swept ``strategy`` table too) and paired by
seed, so one seed gives every arm the same client split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simfl.config import read_toml_file
from simfl.errors import ScenarioError

#: Where ``simfl claims`` finds the catalogue unless ``--dir`` names another directory.
CATALOGUE = Path(__file__).resolve().parents[2] / "scenarios" / "claims"


class Term(BaseModel):
    """One arm of a contrast: the cells whose resolved scenario has ``where``, times ``weight``."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    weight: float
    where: dict[str, Any] = Field(min_length=1)


class ClaimSpec(BaseModel):
    """One ``[[claims]]`` table: what is claimed, by whom, and which cells test it."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    statement: str = Field(min_length=1)
    source: str = Field(min_length=1)
    outcome: str = Field(min_length=1)
    target: float = Field(default=0.5, gt=0.0, le=1.0)  # for the *_to_target outcomes
    better: dict[str, Any] | None = None
    worse: dict[str, Any] | None = None
    terms: list[Term] | None = None

    @model_validator(mode="after")
    def _one_contrast(self) -> ClaimSpec:
        pair = self.better is not None and self.worse is not None
        if pair == (self.terms is not None) or (self.better is None) != (self.worse is None):
            raise ValueError("give either both 'better' and 'worse', or 'terms'")
        return self

    def contrast(self) -> list[Term]:
        """The arms with weights: better minus worse, or the terms as given."""
        if self.terms is not None:
            return self.terms
        return [
            Term(weight=1.0, where=self.better or {}),
            Term(weight=-1.0, where=self.worse or {}),
        ]


@dataclass(frozen=True)
class ClaimFile:
    """A claim file: its scenario and sweep tables (read, not validated yet) and its claims."""

    path: Path
    raw: dict[str, Any]
    grid: dict[str, Any]
    claims: list[ClaimSpec]


def read_claim_file(path: Path) -> ClaimFile:
    """The claims and sweep of ``path``; a bad table is one line naming the file and key."""
    raw = read_toml_file(path)
    tables = raw.pop("claims", None)
    if not isinstance(tables, list) or not tables:
        raise ScenarioError(f"{path.name}: no [[claims]] tables: nothing is claimed")
    claims = []
    for index, table in enumerate(tables):
        try:
            claims.append(ClaimSpec.model_validate(table))
        except ValidationError as error:
            first = error.errors()[0]
            key = ".".join(str(part) for part in ("claims", index, *first["loc"]))
            raise ScenarioError(first["msg"], key=key, source=path.name) from None
    grid = raw.pop("sweep", None)
    if not isinstance(grid, dict) or not grid:
        raise ScenarioError(f"{path.name}: no [sweep] table: the factor of its claims")
    return ClaimFile(path, raw, grid, claims)


def catalogue(directory: Path = CATALOGUE) -> list[ClaimFile]:
    """Every claim file of ``directory``, by name; claim ids must be unique across them."""
    if not directory.is_dir():
        raise ScenarioError(f"{directory}: no such claims directory")
    files = [read_claim_file(path) for path in sorted(directory.glob("*.toml"))]
    seen: dict[str, str] = {}
    for claim_file in files:
        for claim in claim_file.claims:
            if claim.id in seen:
                raise ScenarioError(
                    f"{claim_file.path.name}: claim id {claim.id!r} is also in {seen[claim.id]}"
                )
            seen[claim.id] = claim_file.path.name
    return files


def select(files: list[ClaimFile], wanted: list[str] | None) -> list[ClaimFile]:
    """The files and claims named in ``wanted`` (all when None); an unknown id is one line."""
    if not wanted:
        return files
    known = [claim.id for claim_file in files for claim in claim_file.claims]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ScenarioError(f"--claims {','.join(unknown)}: unknown; allowed: {', '.join(known)}")
    chosen = []
    for claim_file in files:
        claims = [claim for claim in claim_file.claims if claim.id in wanted]
        if claims:
            chosen.append(ClaimFile(claim_file.path, claim_file.raw, claim_file.grid, claims))
    return chosen
