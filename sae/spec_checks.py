"""Checks of a whole `Spec`: every choice and range, and the settings that depend on each other,
each failure a `SaeInputError` that says what to write instead. `sae.spec_file` calls
`check_spec` on every spec it builds, and `Spec.replace` on every changed one.
"""

from __future__ import annotations

import math

from sae.errors import SaeInputError
from sae.spec import (
    BACKENDS,
    CELLS_FORMATS,
    CONTIGUITIES,
    FAMILIES,
    GROUP_EFFECTS,
    GROUP_TRENDS,
    INTERACTIONS,
    ISLAND_RULES,
    METHODS,
    PRIOR_SETS,
    RULE_SETS,
    SPATIAL,
    TRANSFORMS,
    TRENDS,
    VARIANCE_SMOOTHING,
    Spec,
)  # fmt: skip

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
    ("model", "trend"): TRENDS,
    ("model", "group_trend"): GROUP_TRENDS,
    ("model", "interaction"): INTERACTIONS,
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
    ("flags", "gap_meaningful_ratio"): (1.0, math.inf, False, False),
    ("flags", "min_data_share"): (0.0, 1.0, True, True),
    ("output", "per"): (0.0, math.inf, False, False),
    ("output", "interval"): (0.0, 1.0, False, False),
}


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
        check_unknown_group(spec, where)
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
    check_time(spec, where)
    age = spec.output.age_stratum
    if age is not None and age not in data.strata:
        raise SaeInputError(
            f"{where}: [output] age_stratum = {age!r} is not one of the strata "
            f"{list(data.strata)}. Name the age column in [data] strata too."
        )


def check_time(spec: Spec, where: str) -> None:
    """Trends, interactions and pooled periods need a period column; group trends need groups."""
    model, data = spec.model, spec.data
    if data.time is None:
        set_here = [f"[model] {key} = {getattr(model, key)!r}" for key, default in
                    (("trend", "rw1"), ("group_trend", "none"), ("interaction", "iid"))
                    if getattr(model, key) != default]  # fmt: skip
        set_here += ["[data] periods"] * bool(data.periods) + ["[output] pool"] * bool(
            spec.output.pool
        )
        if set_here:
            raise SaeInputError(
                f"{where}: {', '.join(set_here)} describe(s) change over time, so it needs "
                '[data] time = the period column (e.g. time = "year"). Name it, or remove them.'
            )
        return
    if model.group_trend != "none" and data.group is None:
        raise SaeInputError(
            f"{where}: [model] group_trend = {model.group_trend!r} gives each group its own trend, "
            'so it needs [data] group. Name the group column, or set group_trend = "none".'
        )
    if data.time in (data.area_id, data.group, *data.strata, *data.covariates):
        raise SaeInputError(
            f"{where}: [data] time = {data.time!r} is also named as the area, group, a stratum or "
            "a covariate; the period column has one role only."
        )
    if len(set(data.periods)) != len(data.periods):
        raise SaeInputError(f"{where}: [data] periods lists a label twice: {list(data.periods)}.")


def check_unknown_group(spec: Spec, where: str) -> None:
    """Events of unknown group need groups to belong to and Poisson counts; their sensitivity
    analysis (odds of a missing group) needs the NUTS method."""
    if spec.data.unknown_group_count is None:
        if spec.model.unknown_group_odds is not None:
            raise SaeInputError(
                f"{where}: [model] unknown_group_odds is a sensitivity setting for events of "
                "unknown group; it needs [data] unknown_group_count."
            )
        return
    problem = None
    if spec.data.group is None:
        problem = "needs [data] group: unknown-group events are shared out among the groups"
    elif spec.model.family != "poisson":
        problem = 'is defined for family = "poisson" (counts with a population or expected counts)'
    elif spec.model.unknown_group_odds is not None and spec.sampler.method != "nuts":
        problem = ('with [model] unknown_group_odds needs [sampler] method = "nuts": the '
                   "sensitivity analysis gives each block its own probability of a missing group, "
                   "which the Laplace engine does not integrate over")  # fmt: skip
    if problem:
        raise SaeInputError(f"{where}: [data] unknown_group_count {problem}.")


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
