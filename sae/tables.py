"""From labelled draws to the tables sae writes: one row per unit, every number with its interval
and its reliability flag.

Posterior summaries are computed in blocks of cells so memory stays bounded on large maps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from sae import convergence
from sae.gaps import GAP_COLUMNS, compare_draws, interval_bounds
from sae.inputs import Inputs
from sae.posterior import flatten
from sae.reliability import flag_estimates, flag_gaps

CELLS_PER_BLOCK = 2000
DIRECT_COLUMNS = (
    "area", "group", "direct", "direct_se", "mean", "median", "sd",
    "lower", "upper", "rse", "flag", "flag_reason", "shrinkage",
)  # fmt: skip
ESTIMATE_COLUMNS = (
    "area", "group", "observed", "{exposure}", "crude", "mean", "median", "sd",
    "lower", "upper", "rse", "flag", "flag_reason",
)  # fmt: skip
ADJUSTED_COLUMNS = ("mean", "lower", "upper", "rse", "data_share", "flag", "flag_reason")
# the numbers a publication table blanks where their flag is `unreliable`
SUPPRESSED_COLUMNS = ("crude", "direct", "direct_se", "mean", "median", "sd", "lower", "upper",
                      "rse", "relative_width")  # fmt: skip


def unit_table(
    draws: xr.DataArray, inputs: Inputs, direct: bool, per: float, interval: float, flags,
    divergences: int, pareto_k: np.ndarray | None = None, data_variance: np.ndarray | None = None,
    proportion_scale: float | None = None, allocated: pd.DataFrame | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Observed, exposure, crude rate (or the direct estimate), posterior summaries and flags for
    each unit of `draws` (dims chain, draw, unit, with the unit's keys as coordinates).

    Laplace fits corrected locally pass each unit's `pareto_k` (the reliability of the
    correction); `data_variance` is the variance the units' own data alone would give (count
    models), from which the data share follows (`sae.reliability`); `allocated` each unit's share
    of the events whose group is unknown, with its interval."""
    unit = tuple(name for name, c in draws.coords.items() if c.dims == ("unit",))
    if direct:
        table = direct_by_unit(inputs, draws, unit)
    else:
        table = observed_by_unit(inputs, draws, unit)
        exposure = table["exposure"].where(table["exposure"] > 0)
        table["crude"] = table["observed"] / exposure * per
    table = pd.concat([table, summarise_draws(draws, interval)], axis=1)
    if direct:  # posterior analogue of γ_d: the weight on the direct estimate
        table["shrinkage"] = table["sd"] ** 2 / table["direct_se"] ** 2
        table["data_share"] = table["shrinkage"].clip(upper=1.0)
    elif data_variance is not None:
        table["data_share"] = np.clip(table["sd"].to_numpy() ** 2 / data_variance, 0.0, 1.0)
    table["has_data"] = table["exposure"] > 0
    if allocated is not None:  # events without a recorded group, shared out (sae.unknown_group)
        table = pd.concat([table, allocated.set_axis(table.index)], axis=1)
    if pareto_k is not None:
        table["pareto_k"] = pareto_k
    return pd.concat([table, flag_estimates(table, flags, divergences, proportion_scale)], axis=1)


def estimates_table(
    cells: pd.DataFrame, adjusted: pd.DataFrame | None, exposure: str, direct: bool, inputs: Inputs
) -> pd.DataFrame:
    """The cells' table in the documented column order, with `adj_*` columns when age-adjusted."""
    table = with_adjusted(cells, adjusted).rename(columns={"exposure": exposure})
    if direct:
        table = table.drop(columns=["observed"])
    first = [c.format(exposure=exposure) for c in (DIRECT_COLUMNS if direct else ESTIMATE_COLUMNS)]
    if "period" in table:
        first.insert(2, "period")
    return with_names(table[first + [c for c in table.columns if c not in first]], inputs)


def shown_prefix(table: pd.DataFrame) -> str:
    """ "adj_" when `table` has age-adjusted columns (the rates maps, reports and sentences show),
    else ""."""
    return "adj_" if "adj_mean" in table else ""


def with_adjusted(table: pd.DataFrame, adjusted: pd.DataFrame | None) -> pd.DataFrame:
    """`table` (rates for each unit's own population mix, unprefixed) with the age-adjusted rates
    of the same units beside them as `adj_*` columns: one naming in every table sae writes."""
    table = table.copy()
    if adjusted is not None:
        for column in ADJUSTED_COLUMNS:
            table[f"adj_{column}"] = adjusted[column].to_numpy()
    return table


def published_estimates(estimates: pd.DataFrame) -> pd.DataFrame:
    """The estimates for publication (`[output] suppress = true`): every number flagged
    `unreliable` is blanked (rate, interval, RSE, and the crude or direct rate beside it), its
    flag and reason kept, so that no reader can take it for a measured rate; the `adj_*` numbers
    follow `adj_flag`. Counts, exposures and the figures behind the flags are kept."""
    table = estimates.copy()
    for prefix in ("", "adj_"):
        if f"{prefix}flag" in table:
            hidden = table[f"{prefix}flag"] == "unreliable"
            columns = [prefix + c for c in SUPPRESSED_COLUMNS if prefix + c in table]
            table.loc[hidden, columns] = np.nan
    return table


def gap_table(
    target: xr.DataArray, reference: xr.DataArray, excess: xr.DataArray, compared: list,
    flags_of: pd.Series, reference_flags: xr.DataArray, label: str, interval: float, flag_spec,
) -> pd.DataFrame:  # fmt: skip
    """One row per (area, group) of the `compared` groups of `target` (dims chain, draw, area,
    group) against `reference` (the same dims, or without group: a place's all-groups rate), with
    excess events (dims as `target`) and flags. The groups are picked a block of areas at a time,
    so the draws are not copied whole.

    `flags_of` is the cells' flag indexed by (area, group); `reference_flags` the reference's flag,
    labelled like `reference` without chain and draw.
    """
    areas = np.repeat(target["area"].to_numpy(), len(compared))
    groups = np.tile(np.asarray(compared), target.sizes["area"])
    per_block = max(1, CELLS_PER_BLOCK // len(compared))
    table = pd.concat([
        compare_block(target.isel(area=block).sel(group=compared), reference.isel(area=block),
                      excess.isel(area=block).sel(group=compared), interval,
                      flag_spec.gap_meaningful_ratio)
        for block in (slice(start, start + per_block)
                      for start in range(0, target.sizes["area"], per_block))
    ], ignore_index=True)  # fmt: skip
    table.insert(0, "area", areas)
    table.insert(1, "group", groups)
    table.insert(2, "reference", label)
    target_flag = flags_of.reindex(pd.MultiIndex.from_arrays([areas, groups])).reset_index(
        drop=True
    )
    ref_flag = reference_flags.broadcast_like(
        target.isel(chain=0, draw=0, drop=True).sel(group=compared)
    )
    ref_flag = pd.Series(ref_flag.stack(unit=("area", "group")).to_numpy())
    gap_flags = flag_gaps(table, target_flag, ref_flag, flag_spec, interval)
    return pd.concat([table, gap_flags], axis=1)[list(GAP_COLUMNS)]


def compare_block(target, reference, excess, interval: float, meaningful: float) -> pd.DataFrame:
    """Gap summaries for a block of areas, pairs in (area, group) order."""
    pairs = target.stack(unit=("area", "group")).transpose("chain", "draw", "unit")
    compared = reference.broadcast_like(target).stack(unit=("area", "group")).transpose(*pairs.dims)
    table = compare_draws(flatten(pairs), flatten(compared), interval, meaningful)
    excess_draws = flatten(excess.stack(unit=("area", "group")).transpose(*pairs.dims))
    table["excess"] = excess_draws.mean(axis=0, dtype=float)
    table["excess_lower"], table["excess_upper"] = interval_bounds(excess_draws, interval)
    return table


def with_names(table: pd.DataFrame, inputs: Inputs) -> pd.DataFrame:
    """The table with a `name` column after `area` when the spec names an area_name column."""
    if inputs.names is None:
        return table
    named = table.copy()
    named.insert(1, "name", inputs.name_of(table["area"]).to_numpy())
    return named


def direct_by_unit(inputs: Inputs, draws: xr.DataArray, unit: tuple[str, ...]) -> pd.DataFrame:
    """Direct estimate and its standard error per unit: the weighted mean of the unit's direct
    estimates (weights: population, or equal), se = √(Σ w² ψ) / Σ w. `observed` is empty."""
    keys = pd.DataFrame({key: draws[key].to_numpy() for key in unit})
    frame = inputs.cells.frame
    data = frame[frame["estimate"].notna()]
    w = data["exposure"]
    parts = data[list(unit)].assign(
        wy=w * data["estimate"], w2v=w**2 * data["variance"], exposure=w
    )
    sums = parts.groupby(list(unit), as_index=False)[["wy", "w2v", "exposure"]].sum()
    table = keys.merge(sums, on=list(unit), how="left").fillna({"exposure": 0.0})
    return table.assign(
        direct=table["wy"] / table["exposure"],
        direct_se=np.sqrt(table["w2v"]) / table["exposure"],
        observed=np.nan,
    ).drop(columns=["wy", "w2v"])


def observed_by_unit(inputs: Inputs, draws: xr.DataArray, unit: tuple[str, ...]) -> pd.DataFrame:
    """Observed count and exposure summed over each unit's rows, in the order of `draws`' units.

    Where the data have censored counts, `observed_lower` and `observed_upper` bound each unit's
    total, and `observed` is empty for a unit that has a censored row (its count is not known)."""
    keys = pd.DataFrame({key: draws[key].to_numpy() for key in unit})
    columns = ["count", "count_upper", "exposure"]
    totals = inputs.cells.frame.groupby(list(unit), as_index=False)[columns].sum()
    table = keys.merge(totals, on=list(unit), how="left").fillna(
        {"count": 0, "count_upper": 0, "exposure": 0.0}
    )
    table = table.astype({"count": np.int64, "count_upper": np.int64})
    censored = table["count_upper"] > table["count"]
    if not censored.any():
        return table.drop(columns="count_upper").rename(columns={"count": "observed"})
    return table.assign(observed=table["count"].where(~censored)).rename(
        columns={"count": "observed_lower", "count_upper": "observed_upper"}
    )[[*unit, "observed", "observed_lower", "observed_upper", "exposure"]]


def summarise_draws(draws: xr.DataArray, interval: float) -> pd.DataFrame:
    """Mean, median, sd, equal-tailed interval, RSE, relative width, R-hat and bulk ESS per unit
    (R-hat and ESS are empty for a single chain of independent draws)."""
    values = np.asarray(draws)
    blocks = [
        summarise_block(values[:, :, start : start + CELLS_PER_BLOCK], interval)
        for start in range(0, values.shape[2], CELLS_PER_BLOCK)
    ]
    return pd.concat(blocks, ignore_index=True)


def summarise_block(values: np.ndarray, interval: float) -> pd.DataFrame:
    tail = (1.0 - interval) / 2.0
    flat = values.reshape(-1, values.shape[2])
    lower, median, upper = np.quantile(flat, [tail, 0.5, 1.0 - tail], axis=0).astype(float)
    mean, sd = flat.mean(axis=0, dtype=float), flat.std(axis=0, ddof=1, dtype=float)
    if values.shape[0] > 1:
        with np.errstate(invalid="ignore", divide="ignore"):  # constant draws give nan R-hat
            rhat, ess = convergence.rhat_and_ess(values)
    else:
        rhat = ess = np.full(values.shape[2], np.nan)
    return pd.DataFrame({
        "mean": mean, "median": median, "sd": sd, "lower": lower, "upper": upper,
        "rse": sd / mean, "relative_width": (upper - lower) / mean, "rhat": rhat, "ess_bulk": ess,
    })  # fmt: skip
