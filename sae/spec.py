"""Model specifications: a TOML file read into a frozen, validated `Spec`.

All defaults live here. Paths in a spec file are relative to that file. The schema is documented
in README.md ("The spec format").
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sae.errors import SaeInputError

CONTIGUITIES = ("queen", "rook")
ISLAND_RULES = ("keep", "connect")
FAMILIES = ("poisson", "binomial", "gaussian")
TRANSFORMS = ("none", "log", "logit", "arcsine")
SPATIAL = ("bym2", "none")
GROUP_EFFECTS = ("none", "iid", "bym2")
PRIOR_SETS = ("pc", "morris2019")
BACKENDS = ("nutpie", "pymc")


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
    population: str | None = None
    expected: str | None = None
    trials: str | None = None
    estimate: str | None = None
    variance: str | None = None
    se: str | None = None
    sample_size: str | None = None
    covariates: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()


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
    group_effects: str = "iid"
    priors: str = "pc"
    spatial: str = "bym2"
    transform: str = "none"


@dataclass(frozen=True)
class SamplerSpec:
    """MCMC settings. A given seed gives the same numbers."""

    backend: str = "nutpie"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    seed: int = 1
    target_accept: float = 0.9
    low_rank_mass_matrix: bool = False


@dataclass(frozen=True)
class FlagSpec:
    """Reliability thresholds; see `sae.reliability` for their sources."""

    rse_unreliable: float = 0.30
    rse_caution: float = 0.20
    relative_width_unreliable: float = 1.6
    min_events: int = 20
    max_rhat: float = 1.01
    min_ess: float = 400.0
    gap_clear: float = 0.95
    gap_possible: float = 0.80


@dataclass(frozen=True)
class OutputSpec:
    """How rates are reported. `per` is None until resolved from the data kind (see `rate_scale`)."""

    per: float | None = None
    interval: float = 0.95
    reference_group: str | None = None
    age_stratum: str | None = None
    standard_population: Path | None = None


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

    @property
    def exposure(self) -> str:
        """The exposure kind: 'population', 'expected', 'trials', or 'weight' (a Fay–Herriot model
        without population: every direct estimate weighs the same when cells are combined)."""
        found = [k for k in ("population", "expected", "trials") if getattr(self.data, k)]
        return found[0] if found else "weight"

    @property
    def per(self) -> float:
        """Rates are reported per this many: 100,000 people, 1 (relative risk, or a Fay–Herriot
        estimate on its own scale), or 100 (percent)."""
        if self.output.per is not None:
            return self.output.per
        if self.model.family == "gaussian":
            return 1.0
        return {"population": 100_000.0, "expected": 1.0, "trials": 100.0}[self.exposure]

    def replace(self, **sections: Any) -> Spec:
        """A copy with some sections changed, e.g. `spec.replace(sampler={"draws": 200})`."""
        changes = {
            name: dataclasses.replace(getattr(self, name), **values)
            if isinstance(values, dict)
            else values
            for name, values in sections.items()
        }
        spec = dataclasses.replace(self, **changes)
        validate_spec(spec, spec.source or "<spec>")
        return spec


SECTIONS = {
    "data": DataSpec,
    "graph": GraphSpec,
    "model": ModelSpec,
    "sampler": SamplerSpec,
    "flags": FlagSpec,
    "output": OutputSpec,
}
PATH_FIELDS = {
    ("data", "cells"),
    ("data", "areas"),
    ("graph", "edges"),
    ("output", "standard_population"),
}
TUPLE_FIELDS = {("data", "strata"), ("data", "covariates"), ("data", "categorical")}


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file. Relative paths in it are taken relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise SaeInputError(f"{path}: no such spec file. Give the path to a .toml model spec.")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SaeInputError(
            f"{path}: not valid TOML ({err}). Fix the syntax at that line."
        ) from err
    return spec_from_dict(raw, base=path.resolve().parent, source=path)


def spec_from_dict(
    raw: dict[str, Any], base: Path | None = None, source: Path | None = None
) -> Spec:
    """Build a `Spec` from nested dicts as a TOML file would give them."""
    where = str(source or "<spec>")
    unknown = set(raw) - set(SECTIONS) - {"title"}
    if unknown:
        raise SaeInputError(
            f"{where}: unknown section(s) {sorted(unknown)}. Allowed: title, {', '.join(SECTIONS)}."
        )
    sections = {
        name: section_from_dict(name, cls, raw.get(name, {}), base, where)
        for name, cls in SECTIONS.items()
    }
    spec = Spec(title=str(raw.get("title", Spec.title)), source=source, **sections)
    validate_spec(spec, where)
    return spec


def section_from_dict(name: str, cls: type, values: dict, base: Path | None, where: str) -> Any:
    if not isinstance(values, dict):
        raise SaeInputError(f"{where}: [{name}] must be a table of settings.")
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - allowed
    if unknown:
        raise SaeInputError(
            f"{where}: unknown setting(s) {sorted(unknown)} in [{name}]. "
            f"Allowed: {', '.join(sorted(allowed))}."
        )
    converted = {}
    for key, value in values.items():
        if (name, key) in PATH_FIELDS:
            value = Path(value) if base is None else (base / value).resolve()
        elif (name, key) in TUPLE_FIELDS:
            value = (value,) if isinstance(value, str) else tuple(value)
        converted[key] = value
    return cls(**converted)


def validate_spec(spec: Spec, where: str) -> None:
    """Check choices and combinations; raise a `SaeInputError` that says what to write instead."""
    choices = [
        ("graph", "contiguity", CONTIGUITIES),
        ("graph", "islands", ISLAND_RULES),
        ("model", "family", FAMILIES),
        ("model", "group_effects", GROUP_EFFECTS),
        ("model", "priors", PRIOR_SETS),
        ("model", "spatial", SPATIAL),
        ("model", "transform", TRANSFORMS),
        ("sampler", "backend", BACKENDS),
    ]
    for section, key, allowed in choices:
        value = getattr(getattr(spec, section), key)
        if value not in allowed:
            raise SaeInputError(
                f"{where}: [{section}] {key} = {value!r} is not known. "
                f"Use one of: {', '.join(allowed)}."
            )
    data = spec.data
    if spec.model.family == "gaussian":
        validate_direct_estimates(spec, where)
    else:
        given = [k for k in ("population", "expected", "trials") if getattr(data, k)]
        wanted = "trials" if spec.model.family == "binomial" else "population or expected"
        if len(given) != 1 or (spec.model.family == "binomial") != (given == ["trials"]):
            raise SaeInputError(
                f"{where}: [data] must name exactly one exposure column for family "
                f"{spec.model.family!r}: {wanted} (found: {', '.join(given) or 'none'})."
            )
    if spec.model.group_effects != "none" and data.group is None:
        raise SaeInputError(
            f"{where}: [model] group_effects = {spec.model.group_effects!r} needs [data] group "
            '(the group column). Name it, or set group_effects = "none".'
        )
    age = spec.output.age_stratum
    if age is not None and age not in data.strata:
        raise SaeInputError(
            f"{where}: [output] age_stratum = {age!r} is not one of the strata "
            f"{list(data.strata)}. Name the age column in [data] strata too."
        )
    if not 0 < spec.output.interval < 1:
        raise SaeInputError(f"{where}: [output] interval must lie between 0 and 1, e.g. 0.95.")
    sampler = spec.sampler
    if min(sampler.chains, sampler.draws) < 1 or sampler.tune < 0:
        raise SaeInputError(f"{where}: [sampler] chains and draws must be ≥ 1 and tune ≥ 0.")


def validate_direct_estimates(spec: Spec, where: str) -> None:
    """A Fay–Herriot spec names the estimate, exactly one of variance or se, and no count exposure."""
    data = spec.data
    if data.estimate is None or (data.variance is None) == (data.se is None):
        raise SaeInputError(
            f'{where}: family = "gaussian" needs [data] estimate = the direct estimate column and '
            "exactly one of variance = or se = (its sampling variance or standard error)."
        )
    if data.expected or data.trials:
        raise SaeInputError(
            f'{where}: family = "gaussian" takes direct estimates; remove [data] expected / trials '
            "(population may stay: it weighs cells when they are combined)."
        )
    if spec.model.transform == "arcsine" and data.sample_size is None:
        raise SaeInputError(
            f'{where}: transform = "arcsine" uses the variance 1/(4n) of asin(√p), so it needs '
            "[data] sample_size = the column of sample sizes."
        )
