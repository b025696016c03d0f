"""Model specifications: the frozen `Spec` a fit is described by, with every default.

Reading, checking and writing spec files (TOML) is `sae.spec_file`. The schema is documented in
README.md ("The spec format").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sae.errors import SaeInputError
from sae.family import Family, family_of

CONTIGUITIES = ("queen", "rook")
ISLAND_RULES = ("keep", "connect")
FAMILIES = ("poisson", "binomial", "gaussian")
TRANSFORMS = ("none", "log", "logit", "arcsine")
VARIANCE_SMOOTHING = ("none", "gvf", "proportion")
CELLS_FORMATS = ("table", "wonder")
SPATIAL = ("bym2", "none")
GROUP_EFFECTS = ("none", "iid", "bym2", "mcar")
PRIOR_SETS = ("pc", "morris2019")
BACKENDS = ("nutpie", "pymc")
METHODS = ("nuts", "laplace")
RULE_SETS = ("nchs", "quick2024", "uscs")
TRENDS = ("none", "rw1", "rw2")
GROUP_TRENDS = ("none", "iid", "rw1", "rw2")
INTERACTIONS = ("none", "iid")


@dataclass(frozen=True)
class Suppression:
    """A count reported as `marker` (e.g. "Suppressed") lies in [lower, upper] (e.g. 1–15: CDC
    WONDER and US Cancer Statistics suppress counts below 16, and show zeros as 0)."""

    marker: str
    lower: int
    upper: int


@dataclass(frozen=True)
class MissingOdds:
    """A sensitivity setting for events of unknown group: `group`'s events lack their group with
    `odds` times the odds of the other groups' (1: missing at random)."""

    group: str
    odds: float


@dataclass(frozen=True)
class PeriodPool:
    """Periods `first` to `last` (inclusive, in the periods' order) reported as one combined
    period: `[output] pool = [[2013, 2017], [2018, 2022]]`."""

    first: int | str
    last: int | str

    @property
    def label(self) -> str:
        return f"{self.first}-{self.last}"  # ASCII: Excel reads a CSV without a BOM as ANSI


@dataclass(frozen=True)
class DataSpec:
    """Where the cells and areas are, and which columns mean what."""

    cells: Path | None = None
    areas: Path | None = None
    areas_layer: str | None = None
    area_id: str = "area"
    area_name: str | None = None
    group: str | None = None
    strata: tuple[str, ...] = ()
    count: str = "count"
    suppressed: Suppression | None = None  # { marker = "Suppressed", range = [1, 15] }
    count_lower: str | None = None  # per-row bounds for counts left empty (censored)
    count_upper: str | None = None
    unknown_group_count: str | None = (
        None  # events of unknown group per area × stratum (sae.unknown_group)
    )
    population: str | None = None
    expected: str | None = None
    trials: str | None = None
    estimate: str | None = None
    variance: str | None = None
    se: str | None = None
    sample_size: str | None = None
    variance_smoothing: str = "none"  # none | gvf | proportion (sae.direct)
    covariates: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    time: str | None = None  # the period column: whole numbers (years), or labels in `periods`
    periods: tuple[
        str, ...
    ] = ()  # the order of text period labels, e.g. ["2013-2017", "2018-2022"]
    cells_format: str = (
        "table"  # table (CSV or Parquet) | wonder (a CDC WONDER export, as downloaded)
    )


@dataclass(frozen=True)
class GraphSpec:
    """How areas are linked: polygon contiguity or a given edge list, and what to do with islands."""

    contiguity: str = "queen"
    edges: Path | None = None
    islands: str = "keep"


@dataclass(frozen=True)
class ModelSpec:
    """The likelihood, the group structure and the prior set."""

    family: str = "poisson"
    group_effects: str | None = None  # None: "iid" when [data] group is given, else "none"
    priors: str = "pc"
    spatial: str = "bym2"
    transform: str = "none"
    pc_sigma: tuple[float, float] | None = None  # P(σ > U) = α; None: the family's (sae.priors)
    pc_rho: tuple[float, float] = (0.5, 2.0 / 3.0)  # P(ρ < U) = α
    # strata whose effects differ by group (group × stratum interactions); None: the age stratum
    # when the data have groups (benchmarks/strata_by_group), [] for effects shared by all groups
    strata_by_group: tuple[str, ...] | None = None
    unknown_group_odds: MissingOdds | None = None  # { group = "...", odds = 2.0 }: sensitivity
    # with [data] time (sae.random_walk): f_t, the trend all groups share; f_gt, each group's own
    # (None: "rw1" when the data have groups, else "none"); δ_it, area × period deviations
    trend: str = "rw1"
    group_trend: str | None = None
    interaction: str = "iid"


@dataclass(frozen=True)
class SamplerSpec:
    """How the posterior is computed: `method` nuts (MCMC; `backend` nutpie or pymc) or laplace
    (`sae.laplace`). A given seed gives the same numbers."""

    method: str = "laplace"
    backend: str = "nutpie"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    seed: int = 1
    target_accept: float = 0.9
    low_rank_mass_matrix: bool = False
    integration_points: int | None = None  # laplace: evaluations over θ (None: 64 + 8 per θ)


@dataclass(frozen=True)
class FlagSpec:
    """Reliability rules and thresholds; see `sae.reliability` for their sources."""

    rules: str = "nchs"  # nchs | quick2024 | uscs
    min_data_share: float = 0.5  # below it a number is model-driven
    rse_unreliable: float = 0.30
    rse_caution: float = 0.20
    relative_width_unreliable: float = 1.6
    min_events: int = 20
    max_rhat: float = 1.01
    min_ess: float = 400.0
    gap_possible: float = 0.80  # a gap is "likely" when P(higher) ≥ this (or ≤ 1 − this)
    gap_meaningful_ratio: float = 1.1  # prob_meaningful: P(ratio ≥ this, or ≤ its reciprocal)


@dataclass(frozen=True)
class OutputSpec:
    """How rates are reported. `per` is None until resolved from the data kind (see `rate_scale`)."""

    per: float | None = None
    interval: float = 0.95
    reference_group: str | None = None
    age_stratum: str | None = None
    standard_population: Path | None = None
    suppress: bool = False  # also write estimates_published.csv, unreliable numbers blanked
    pool: tuple[PeriodPool, ...] = ()  # combined periods, e.g. [[2013, 2017], [2018, 2022]]


DERIVED_MODEL_SETTINGS = ("group_effects", "group_trend", "strata_by_group")


@dataclass(frozen=True)
class Spec:
    """A complete, validated description of one fit. Building a model never reads files."""

    title: str = "sae model"
    data: DataSpec = field(default_factory=DataSpec)
    graph: GraphSpec = field(default_factory=GraphSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    flags: FlagSpec = field(default_factory=FlagSpec)
    output: OutputSpec = field(default_factory=OutputSpec)
    source: Path | None = None
    # [model] settings left unset and settled from the data's roles (group_effects, group_trend,
    # strata_by_group): `replace` settles them again when the data change
    defaulted: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        unset = tuple(k for k in DERIVED_MODEL_SETTINGS if getattr(self.model, k) is None)
        object.__setattr__(self, "defaulted", tuple(dict.fromkeys((*self.defaulted, *unset))))
        if self.model.group_effects is None:
            default = "iid" if self.data.group else "none"
            object.__setattr__(
                self, "model", dataclasses.replace(self.model, group_effects=default)
            )
        if self.model.group_trend is None:
            default = "rw1" if self.data.group and self.data.time else "none"
            object.__setattr__(self, "model", dataclasses.replace(self.model, group_trend=default))
        if self.model.strata_by_group is None:
            age = self.output.age_stratum
            default = (age,) if self.data.group and age in self.data.strata else ()
            object.__setattr__(
                self, "model", dataclasses.replace(self.model, strata_by_group=default)
            )

    @property
    def exposure(self) -> str:
        """The exposure kind: 'population', 'expected', 'trials', or 'weight' (a Fay–Herriot model
        without population: every direct estimate weighs the same when cells are combined)."""
        found = [k for k in ("population", "expected", "trials") if getattr(self.data, k)]
        return found[0] if found else "weight"

    @property
    def family(self) -> Family:
        """The likelihood family (`sae.family`), with its transform for Fay–Herriot models."""
        return family_of(self.model.family, self.model.transform)

    @property
    def per(self) -> float:
        """Rates are reported per this many: 100,000 people, 1 (relative risk, or a Fay–Herriot
        estimate on its own scale), or 100 (percent), unless [output] per says otherwise."""
        if self.output.per is not None:
            return self.output.per
        return self.family.default_per(self.exposure)

    @property
    def proportion_scale(self) -> float | None:
        """`per` when the reported numbers are proportions (binomial counts, or prevalences from a
        logit or arcsine Fay–Herriot model), so the proportions standard applies; else None."""
        proportions = self.model.family == "binomial" or (
            self.model.family == "gaussian" and self.model.transform in ("logit", "arcsine")
        )
        return self.per if proportions else None

    @property
    def unit_label(self) -> str:
        """The unit of reported rates in words, e.g. "per 100,000" or "(relative risk)"."""
        return self.family.unit_label(self.per, self.exposure)

    def replace(self, **sections: Any) -> Spec:
        """A copy with some sections changed, e.g. `spec.replace(sampler={"draws": 200})`.

        The changes are checked exactly as a spec file's settings are (names, types, ranges).
        """
        from sae.spec_checks import check_spec
        from sae.spec_file import SECTIONS, section_as_dict, section_from_dict

        where = str(self.source or "<spec>")
        unknown = set(sections) - set(SECTIONS) - {"title"}
        if unknown:
            raise SaeInputError(
                f"spec.replace: unknown section(s) {sorted(unknown)}. "
                f"Allowed: title, {', '.join(SECTIONS)}."
            )
        changes: dict[str, Any] = {}
        model = sections.get("model", {}) if isinstance(sections.get("model", {}), dict) else None
        if model is not None and self.defaulted:  # settle the defaults again from the new data
            sections = {**sections, "model": model}
        for name, values in sections.items():
            if name == "title" or not isinstance(values, dict):
                changes[name] = values
                continue
            current = section_as_dict(getattr(self, name))
            if name == "model":
                current |= {k: None for k in self.defaulted if k not in values}
            merged = {**current, **values}
            changes[name] = section_from_dict(name, SECTIONS[name], merged, None, where)
        defaulted = tuple(k for k in self.defaulted if k not in sections.get("model", {}))
        spec = dataclasses.replace(self, defaulted=defaulted, **changes)
        check_spec(spec, where)
        return spec
