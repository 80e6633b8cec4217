"""The parameters of every partitioner, as validated pydantic models (stdlib + pydantic only).

Kept apart from the implementations so that a configuration schema can embed them without
importing numpy, pandas or the partitioners themselves. Field names, defaults and bounds are a
compatibility contract: a configuration's identity (simfl hashes the dumped fields) must not move
when this file does. Quantity-skew parameters carry a ``kind`` tag because a composition picks
one of them by it (a discriminated union); it defaults to the model's own tag, so standalone use
need not spell it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Effect = Literal["noise", "band", "gain", "speed", "reverb"]


class _Params(BaseModel):
    """Unknown fields are errors (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class IidParams(_Params):
    """Uniformly random near-equal parts: nothing to choose."""


class DirichletParams(_Params):
    """Per-class client shares ~ Dirichlet(``alpha``): smaller ``alpha``, stronger label skew.

    ``min_size``: every client holds at least this many samples (redrawn until it does).
    ``self_balancing``: Flower Datasets' rule, a client above the mean size gets no more.
    """

    alpha: float = Field(gt=0.0, le=1e6)
    """Dirichlet concentration of each class's client shares: small values (0.1) give clients
    few dominant labels, large ones (100) approach an IID split."""
    min_size: int = Field(default=10, ge=0)
    """Fewest samples any client may hold: the split is redrawn with derived seeds until every
    client holds this many (an infeasible value is an error naming it)."""
    self_balancing: bool = False
    """Flower Datasets' self-balancing: class by class, a client already above the mean size
    gets no more samples."""


class PathologicalParams(_Params):
    """Every client holds exactly ``k`` labels and at least ``min_size`` samples."""

    k: int = Field(default=2, ge=1)
    """Distinct labels each client holds; every label has at least one holder, and a label's
    samples are shared equally among its holders."""
    min_size: int = Field(default=1, ge=0)
    """Fewest samples any client may hold; a split that cannot give every client this many is
    an error naming it."""


class ShardsParams(_Params):
    """Label-sorted data cut into near-equal shards, ``shards_per_client`` dealt to each."""

    shards_per_client: int = Field(default=2, ge=1)
    """Shards each client gets: the label-sorted samples are cut into ``num_clients`` ×
    ``shards_per_client`` near-equal shards, dealt at random (McMahan et al. 2017)."""


class _QuantityParams(_Params):
    """Client sizes: ``min_size`` each, the rest shared by weights from a distribution."""

    min_size: int = Field(default=10, ge=0)
    """Samples every client gets first; the rest is shared in proportion to the drawn weights
    (largest-remainder rounding). More than the data allows is an error naming it."""


class PowerLawParams(_QuantityParams):
    """Size above ``min_size`` ~ Pareto(``exponent``) (heavy tail)."""

    kind: Literal["powerlaw"] = "powerlaw"
    """Names this distribution inside a composition's ``[partition.quantity]``."""
    exponent: float = Field(default=1.5, gt=0.0, le=100.0)
    """Pareto shape a of the size weights (1 + Pareto(a)): smaller values, heavier tail and a
    few much larger clients."""


class LogNormalParams(_QuantityParams):
    """Size above ``min_size`` ~ exp(N(0, ``sigma``^2))."""

    kind: Literal["lognormal"] = "lognormal"
    """Names this distribution inside a composition's ``[partition.quantity]``."""
    sigma: float = Field(default=1.0, gt=0.0, le=10.0)
    """Standard deviation of the log of the size weights: larger values, more unequal client
    sizes."""


class DirichletSizesParams(_QuantityParams):
    """Size shares above ``min_size`` ~ Dirichlet(``alpha``) (small ``alpha`` = skewed)."""

    kind: Literal["dirichlet-sizes"] = "dirichlet-sizes"
    """Names this distribution inside a composition's ``[partition.quantity]``."""
    alpha: float = Field(default=1.0, gt=0.0, le=1e6)
    """Dirichlet concentration of the size shares: small values give a few large clients,
    large values near-equal sizes."""


QuantityParams = PowerLawParams | LogNormalParams | DirichletSizesParams


class SpeakerParams(_Params):
    """One speaker per partition: the number of partitions must equal the speakers."""


class SpeakerGroupsParams(_Params):
    """Each partition holds ``group_size`` speakers (the remainder spread one by one)."""

    group_size: int = Field(default=4, ge=1)
    """Speakers per client; ``num_clients`` must equal train speakers // ``group_size`` (the
    error names the value that fits), the remainder spread one per client."""


class AccentParams(_Params):
    """Every partition speaks one accent (``by = "accent"``) or one voice family."""

    by: Literal["accent", "voice"] = "accent"
    """Metadata column whose families the clients follow: ``accent``, or ``voice`` (the
    synthetic speakers' eSpeak voice variant). Each family gets clients in proportion to its
    speakers, at least one."""


class AcousticParams(_Params):
    """How far apart the clients' recording conditions are, and which effects make them.

    ``severity`` 0 leaves every client's audio untouched; 1 spreads clients from clean to
    0 dB SNR, 1.5 kHz bandwidth, +-12 dB gain and +-15 % speed.
    """

    severity: float = Field(default=0.5, ge=0.0, le=1.0)
    """How far the clients' channels may be from clean: 0 leaves the audio untouched, 1 spreads
    clients from clean to 0 dB SNR, 1.5 kHz bandwidth, ±12 dB gain and ±15 % speed."""
    effects: tuple[Effect, ...] = ("noise", "band", "gain", "speed")
    """Effects making up a client's channel: additive ``noise``, a ``band``-pass microphone,
    ``gain``, ``speed`` perturbation (tempo and pitch), and room ``reverb`` (up to 0.8 s RT60)."""


class ComposeParams(_Params):
    """Label shift (``label``) x quantity skew (``quantity``) x feature shift (``acoustic``).

    Any one or two may be left out, not all three.
    """

    label: DirichletParams | None = None
    """``[partition.label]``: Dirichlet label shift, each class shared by Dirichlet proportions
    weighted by the quantity draw; unset: no label shift."""
    quantity: Annotated[QuantityParams, Field(discriminator="kind")] | None = None
    """``[partition.quantity]``: quantity skew, client sizes from the distribution its ``kind``
    names; unset: no quantity skew."""
    acoustic: AcousticParams | None = None
    """``[partition.acoustic]``: acoustic feature shift, a recording channel per client applied
    before feature extraction; unset: clean audio."""

    @model_validator(mode="after")
    def _at_least_one_part(self) -> ComposeParams:
        if self.label is None and self.quantity is None and self.acoustic is None:
            raise ValueError("compose needs at least one of label, quantity, acoustic")
        return self
