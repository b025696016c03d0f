"""Spec files: a TOML file read into a checked `Spec`, and a `Spec` written back as TOML.

Every setting is checked for its name, its type and its range, and combinations are checked too,
so that a mistake stops the run with a message that says what to write instead. Paths in a spec
file are relative to that file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from sae.errors import SaeInputError
from sae.spec import (
    BACKENDS,
    CELLS_FORMATS,
    CONTIGUITIES,
    FAMILIES,
    GROUP_EFFECTS,
    ISLAND_RULES,
    METHODS,
    PRIOR_SETS,
    RULE_SETS,
    SPATIAL,
    TRANSFORMS,
    VARIANCE_SMOOTHING,
    DataSpec,
    FlagSpec,
    GraphSpec,
    ModelSpec,
    OutputSpec,
    SamplerSpec,
    Spec,
    Suppression,
)  # fmt: skip

SECTIONS = {
    "data": DataSpec,
    "graph": GraphSpec,
    "model": ModelSpec,
    "sampler": SamplerSpec,
    "flags": FlagSpec,
    "output": OutputSpec,
}
CHOICES = {
    ("data", "cells_format"): CELLS_FORMATS,
    ("data", "variance_smoothing"): VARIANCE_SMOOTHING,
    ("graph", "contiguity"): CONTIGUITIES,
    ("graph", "islands"): ISLAND_RULES,
    ("model", "family"): FAMILIES,
    ("model", "group_effects"): GROUP_EFFECTS,
    ("model", "priors"): PRIOR_SETS,
    ("model", "spatial"): SPATIAL,
    ("model", "transform"): TRANSFORMS,
    ("sampler", "backend"): BACKENDS,
    ("sampler", "method"): METHODS,
    ("flags", "rules"): RULE_SETS,
}
# (low, high, low inclusive, high inclusive) for every number a spec can set
RANGES = {
    ("sampler", "chains"): (1, 64, True, True),
    ("sampler", "draws"): (1, 10**7, True, True),
    ("sampler", "tune"): (0, 10**7, True, True),
    ("sampler", "seed"): (0, 2**32 - 1, True, True),
    ("sampler", "target_accept"): (0.0, 1.0, False, False),
    ("sampler", "integration_points"): (8, 100_000, True, True),
    ("flags", "rse_unreliable"): (0.0, math.inf, False, True),
    ("flags", "rse_caution"): (0.0, math.inf, False, True),
    ("flags", "relative_width_unreliable"): (0.0, math.inf, False, True),
    ("flags", "min_events"): (0, math.inf, True, True),
    ("flags", "max_rhat"): (1.0, math.inf, False, True),
    ("flags", "min_ess"): (0.0, math.inf, True, True),
    ("flags", "gap_possible"): (0.5, 1.0, False, False),
    ("flags", "min_data_share"): (0.0, 1.0, True, True),
    ("output", "per"): (0.0, math.inf, False, False),
    ("output", "interval"): (0.0, 1.0, False, False),
}


def load_spec(path: str | Path) -> Spec:
    """Read and check a spec file.

    Parameters
    ----------
    path : str or Path
        A TOML model spec; relative paths in it are taken relative to the file.

    Returns
    -------
    Spec
        The checked spec; any unknown name, wrong type or out-of-range value raises
        `SaeInputError` naming the setting and what to write instead.
    """
    path = Path(path)
    if not path.is_file():
        raise SaeInputError(f"{path}: no such spec file. Give the path to a .toml model spec.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
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
    title = raw.get("title", Spec.title)
    if not isinstance(title, str):
        raise SaeInputError(f'{where}: title must be text in quotes, e.g. title = "Lung cancer".')
    sections = {
        name: section_from_dict(name, cls, raw.get(name, {}), base, where)
        for name, cls in SECTIONS.items()
    }
    spec = Spec(title=title, source=source, **sections)
    check_spec(spec, where)
    return spec


def section_from_dict(name: str, cls: type, values: dict, base: Path | None, where: str) -> Any:
    """One section's settings: known names only, each of its declared type (paths resolved)."""
    if not isinstance(values, dict):
        raise SaeInputError(f"{where}: [{name}] must be a table of settings.")
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - allowed
    if unknown:
        raise SaeInputError(
            f"{where}: unknown setting(s) {sorted(unknown)} in [{name}]. "
            f"Allowed: {', '.join(sorted(allowed))}."
        )
    hints = typing.get_type_hints(cls)
    converted = {
        key: setting_value(name, key, value, hints[key], base, where)
        for key, value in values.items()
    }
    return cls(**converted)


def setting_value(section: str, key: str, value: Any, hint: Any, base: Path | None, where: str):
    """`value` checked against the field's type `hint` and converted (paths, tuples, floats)."""
    kinds = set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
    if value is None and type(None) in kinds:
        return None
    setting = f"{where}: [{section}] {key} = {value!r}"
    if Path in kinds:
        if not isinstance(value, str | Path):
            raise SaeInputError(f'{setting} must be a path in quotes, e.g. {key} = "data.csv".')
        return Path(value) if base is None else (base / value).resolve()
    if Suppression in kinds:
        return suppression_value(value, setting)
    if tuple[float, float] in kinds:
        numbers = isinstance(value, list | tuple) and len(value) == 2
        if not numbers or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise SaeInputError(
                f"{setting} must be two numbers [U, alpha], e.g. {key} = [1.0, 0.01]."
            )
        return (float(value[0]), float(value[1]))
    if tuple[str, ...] in kinds:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
            raise SaeInputError(f'{setting} must be a list of column names, e.g. ["age", "sex"].')
        return tuple(items)
    if bool in kinds:
        if not isinstance(value, bool):
            raise SaeInputError(f"{setting} must be true or false.")
        return value
    if int in kinds:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SaeInputError(f"{setting} must be a whole number, e.g. {key} = 1000.")
        return value
    if float in kinds:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SaeInputError(f"{setting} must be a number (not text in quotes).")
        return float(value)
    if not isinstance(value, str):
        raise SaeInputError(f'{setting} must be text in quotes, e.g. {key} = "...".')
    return value


def suppression_value(value, setting: str) -> Suppression:
    """{ marker = "Suppressed", range = [1, 15] } (or a Suppression already)."""
    if isinstance(value, Suppression):
        return value
    example = 'e.g. suppressed = { marker = "Suppressed", range = [1, 15] }'
    if not isinstance(value, dict) or set(value) != {"marker", "range"}:
        raise SaeInputError(f"{setting} must be a table with marker and range, {example}.")
    marker, bounds = value["marker"], value["range"]
    whole = (
        isinstance(bounds, list | tuple)
        and len(bounds) == 2
        and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
    )
    if not isinstance(marker, str) or not marker.strip() or not whole:
        raise SaeInputError(
            f"{setting}: marker must be the text that stands for a suppressed count and range two "
            f"whole numbers [lower, upper], {example}."
        )
    if not 0 <= bounds[0] < bounds[1]:
        raise SaeInputError(
            f"{setting}: range [{bounds[0]}, {bounds[1]}] must have 0 ≤ lower < upper (a count "
            "known exactly needs no marker)."
        )
    return Suppression(marker, bounds[0], bounds[1])


def section_as_dict(section: Any) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}


def check_spec(spec: Spec, where: str) -> None:
    """Check choices, ranges and combinations; raise a `SaeInputError` that says what to write."""
    for (section, key), allowed in CHOICES.items():
        value = getattr(getattr(spec, section), key)
        if value not in allowed:
            raise SaeInputError(
                f"{where}: [{section}] {key} = {value!r} is not known. "
                f"Use one of: {', '.join(allowed)}."
            )
    for (section, key), bounds in RANGES.items():
        check_range(section, key, getattr(getattr(spec, section), key), bounds, where)
    flags = spec.flags
    if flags.rse_caution > flags.rse_unreliable:
        raise SaeInputError(
            f"{where}: [flags] the caution threshold must not be stricter than the unreliable "
            "one (rse_caution ≤ rse_unreliable)."
        )
    check_pc_parameters(spec, where)
    check_data_roles(spec, where)


def check_pc_parameters(spec: Spec, where: str) -> None:
    """P(σ > U) = α needs U > 0; P(ρ < U) = α needs 0 < U < 1; both need 0 < α < 1."""
    sigma_u, sigma_alpha = spec.model.pc_sigma or (1.0, 0.01)
    rho_u, rho_alpha = spec.model.pc_rho
    if not (sigma_u > 0 and 0 < sigma_alpha < 1 and 0 < rho_u < 1 and 0 < rho_alpha < 1):
        raise SaeInputError(
            f"{where}: [model] pc_sigma = [U, α] needs U > 0 and 0 < α < 1 (P(σ > U) = α); "
            "pc_rho = [U, α] needs 0 < U < 1 and 0 < α < 1 (P(ρ < U) = α)."
        )


def check_range(section: str, key: str, value, bounds: tuple, where: str) -> None:
    if value is None:
        return
    low, high, low_in, high_in = bounds
    inside = (value >= low if low_in else value > low) and (
        value <= high if high_in else value < high
    )
    if not inside:
        left, right = "[" if low_in else "(", "]" if high_in else ")"
        raise SaeInputError(
            f"{where}: [{section}] {key} = {value!r} is out of range; it must lie in "
            f"{left}{bound_text(low)}, {bound_text(high)}{right}."
        )


def bound_text(bound: float) -> str:
    return f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"


def check_data_roles(spec: Spec, where: str) -> None:
    """The columns a family needs are named, and settings that depend on each other agree."""
    data = spec.data
    if spec.model.family == "gaussian":
        check_direct_estimates(spec, where)
    else:
        if data.variance_smoothing != "none":
            raise SaeInputError(
                f"{where}: [data] variance_smoothing smooths the sampling variances of survey "
                f'estimates (family = "gaussian"); family {spec.model.family!r} has counts. '
                "Remove it."
            )
        check_censoring(spec, where)
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
    if spec.model.priors == "morris2019" and spec.exposure == "population":
        raise SaeInputError(
            f'{where}: [model] priors = "morris2019" puts N(0, 1) on the intercept, a log relative '
            "risk; with a population exposure the intercept is a log rate per person (about −9) "
            'and that prior would pull it towards 1 per person. Use priors = "pc", or expected counts.'
        )
    undeclared = sorted(set(data.categorical) - set(data.covariates))
    if undeclared:
        raise SaeInputError(
            f"{where}: [data] categorical names {undeclared}, which are not among the covariates "
            f"{list(data.covariates)}. Add them to covariates or remove them from categorical."
        )
    check_strata_by_group(spec, where)
    age = spec.output.age_stratum
    if age is not None and age not in data.strata:
        raise SaeInputError(
            f"{where}: [output] age_stratum = {age!r} is not one of the strata "
            f"{list(data.strata)}. Name the age column in [data] strata too."
        )


def check_censoring(spec: Spec, where: str) -> None:
    """Bounds for censored counts come in pairs."""
    data = spec.data
    if (data.count_lower is None) != (data.count_upper is None):
        raise SaeInputError(
            f"{where}: [data] count_lower and count_upper name the columns of the smallest and "
            "largest possible count of a censored row; give both, or neither."
        )


def check_strata_by_group(spec: Spec, where: str) -> None:
    """Group-specific stratum effects need groups, and name strata of the data."""
    named = spec.model.strata_by_group
    if named and spec.data.group is None:
        raise SaeInputError(
            f"{where}: [model] strata_by_group = {list(named)} gives each group its own stratum "
            "effects, so it needs [data] group (the group column). Name it, or remove strata_by_group."
        )
    unknown = [s for s in named if s not in spec.data.strata]
    if unknown:
        raise SaeInputError(
            f"{where}: [model] strata_by_group names {unknown}, which are not among the strata "
            f"{list(spec.data.strata)}. Name them in [data] strata too, or remove them."
        )


def check_direct_estimates(spec: Spec, where: str) -> None:
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
    if data.suppressed or data.count_lower:
        raise SaeInputError(
            f"{where}: [data] suppressed / count_lower / count_upper describe censored counts; "
            'family = "gaussian" takes direct estimates. Remove them.'
        )
    check_variance_smoothing(spec, where)
    if spec.model.transform == "arcsine" and data.sample_size is None:
        raise SaeInputError(
            f'{where}: transform = "arcsine" uses the variance 1/(4n) of asin(√p), so it needs '
            "[data] sample_size = the column of sample sizes."
        )


def check_variance_smoothing(spec: Spec, where: str) -> None:
    """Smoothing needs sample sizes, and is not combined with the arcsine transform's own."""
    smoothing = spec.data.variance_smoothing
    if smoothing == "none":
        return
    if spec.data.sample_size is None:
        raise SaeInputError(
            f'{where}: [data] variance_smoothing = "{smoothing}" predicts each variance from the '
            "cell's sample size, so it needs [data] sample_size = the column of sample sizes."
        )
    if spec.model.transform == "arcsine":
        raise SaeInputError(
            f'{where}: [data] variance_smoothing = "{smoothing}" with transform = "arcsine": the '
            "arcsine transform already stabilises the variance (1/(4ñ), ñ the effective sample "
            'size). Use one of them: variance_smoothing = "none", or another transform.'
        )


def spec_to_toml(spec: Spec, relative_to: Path | None = None) -> str:
    """The spec as TOML that `load_spec` reads back to an equal spec; None settings are left out.

    With `relative_to` (a directory) paths are written relative to it, so a folder that moves
    together with its data keeps working; otherwise they are written as they are.
    """
    lines = [f"title = {json.dumps(spec.title, ensure_ascii=False)}"]
    for section in SECTIONS:
        lines.append(f"\n[{section}]")
        for key, value in section_as_dict(getattr(spec, section)).items():
            if isinstance(value, Path) and relative_to is not None:
                value = os.path.relpath(value, relative_to)
            if value is not None:
                lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    if isinstance(value, Suppression):
        return (f"{{ marker = {json.dumps(value.marker, ensure_ascii=False)}, "
                f"range = [{value.lower}, {value.upper}] }}")  # fmt: skip
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # inf and nan are TOML too
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
