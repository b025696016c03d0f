"""Inequality measures over time, as surveil reports them, computed draw by draw from one posterior.

For a place (an area, or all areas together), a group D against the reference group A, period t:

    rate difference   RD = θ_D − θ_A,   rate ratio RR = θ_D / θ_A
    excess events     EC = Σ_k E_Dk (θ_Dk − θ_Ak) / per over the strata k (the events D would not
                      have had at A's rates in the same stratum)
    attributable fraction  PAR = EC / Σ_k E_Dk θ_Dk / per  (= (D − A) / D without strata)
    cumulative excess Σ_t EC_t over a range of periods

and across all groups of a place and period, Theil's T = Σ_g w_g (θ_g / μ) log(θ_g / μ), with w_g
the group's share of the population and μ = Σ_g w_g θ_g (0 when every group has the same rate).

References: Donegan, Hughes & Lee (2022), surveil (Journal of Statistical Software, and its
`group_diff`, `theil` functions); Theil (1967), Economics and Information Theory; Conceição &
Ferreira (2000), The young person's guide to the Theil index.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from sae.gaps import compare_draws, interval_bounds
from sae.posterior import flatten
from sae.reliability import RELIABLE, flag_gaps, worst_flag

ALL_AREAS = "all areas"  # the place that stands for the whole map
MEASURE_COLUMNS = (
    "area", "group", "reference", "period", "rate", "rate_lower", "rate_upper",
    "reference_rate", "reference_rate_lower", "reference_rate_upper",
    "diff_mean", "diff_lower", "diff_upper", "ratio_median", "ratio_lower", "ratio_upper",
    "prob_higher", "excess", "excess_lower", "excess_upper", "par", "par_lower", "par_upper",
    "flag", "flag_reason",
)  # fmt: skip


def with_map(cells: xr.DataArray, whole: xr.DataArray) -> xr.DataArray:
    """Cell draws (…, area, group, period) with the whole map's in front as area `ALL_AREAS`."""
    whole = whole.expand_dims(area=[ALL_AREAS]).transpose(*cells.dims)
    return xr.concat([whole, cells], dim="area")


def stacked(draws: xr.DataArray) -> np.ndarray:
    """(sample, unit) with units in (area, group, period) order."""
    units = draws.stack(unit=("area", "group", "period")).transpose("chain", "draw", "unit")
    return flatten(units)


def measure_table(rates: xr.DataArray, excess: xr.DataArray, events: xr.DataArray,
                  reference: str, flags: pd.Series, interval: float,
                  flag_spec) -> pd.DataFrame:  # fmt: skip
    """One row per place × group × period (groups other than `reference`): RD, RR, EC and PAR
    with intervals and the gaps' flag. Inputs have dims (chain, draw, area, group, period);
    `flags` the rates' flags indexed by (area, group, period)."""
    others = [g for g in rates["group"].to_numpy() if g != reference]
    target = rates.sel(group=others)
    ref = rates.sel(group=reference, drop=True).broadcast_like(target).transpose(*target.dims)
    target_draws, ref_draws = stacked(target), stacked(ref)
    index = target.stack(unit=("area", "group", "period"))["unit"].to_index().to_frame(index=False)
    table = pd.concat([index, compare_draws(target_draws, ref_draws, interval)], axis=1)
    table.insert(2, "reference", reference)
    for name, draws in (("rate", target_draws), ("reference_rate", ref_draws)):
        table[name] = draws.mean(axis=0, dtype=float)
        table[f"{name}_lower"], table[f"{name}_upper"] = interval_bounds(draws, interval)
    excess_draws = stacked(excess.sel(group=others))
    with np.errstate(divide="ignore", invalid="ignore"):  # no population: no fraction (NaN)
        share = excess_draws / stacked(events.sel(group=others))
    table["excess"] = excess_draws.mean(axis=0, dtype=float)
    table["excess_lower"], table["excess_upper"] = interval_bounds(excess_draws, interval)
    table["par"] = share.mean(axis=0, dtype=float)
    table["par_lower"], table["par_upper"] = interval_bounds(share, interval)
    keys = pd.MultiIndex.from_frame(table[["area", "group", "period"]])
    ref_keys = pd.MultiIndex.from_frame(table[["area", "group", "period"]].assign(group=reference))
    target_flag = flags.reindex(keys).reset_index(drop=True)
    ref_flag = flags.reindex(ref_keys).reset_index(drop=True)
    table = pd.concat([table, flag_gaps(table, target_flag, ref_flag, flag_spec, interval)], axis=1)
    return table[list(MEASURE_COLUMNS)]


def cumulative_excess(excess: xr.DataArray, events: xr.DataArray, flags: pd.Series,
                      reference: str, interval: float, flag_spec) -> pd.DataFrame:  # fmt: skip
    """Excess events summed over all the periods of `excess` (chain, draw, area, group, period),
    per place and group other than `reference`, with the interval, P(excess > 0) and the
    cumulative attributable fraction Σ_t EC_t / Σ_t events_t (`events` the expected events, like
    `excess`); flagged ``clear`` when the interval excludes 0, naming the weakest rate involved."""
    others = [g for g in excess["group"].to_numpy() if g != reference]
    total = excess.sel(group=others).sum("period")
    draws = flatten(total.stack(unit=("area", "group")).transpose("chain", "draw", "unit"))
    table = total.stack(unit=("area", "group"))["unit"].to_index().to_frame(index=False)
    table["reference"] = reference
    table["first_period"] = excess["period"].to_numpy()[0]
    table["last_period"] = excess["period"].to_numpy()[-1]
    table["cumulative_excess"] = draws.mean(axis=0, dtype=float)
    lower, upper = interval_bounds(draws, interval)
    table["cumulative_excess_lower"], table["cumulative_excess_upper"] = lower, upper
    table["prob_higher"] = (draws > 0).mean(axis=0, dtype=float)
    expected = events.sel(group=others).sum("period").stack(unit=("area", "group"))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = draws / flatten(expected.transpose("chain", "draw", "unit"))
    table["par"] = share.mean(axis=0, dtype=float)
    table["par_lower"], table["par_upper"] = interval_bounds(share, interval)
    weakest = flags.groupby(level=["area", "group"]).agg(lambda f: worst_flag(f)[0])
    weakest_ref = weakest.xs(reference, level="group")
    involved = pd.Series(worst_flag(
        weakest.reindex(pd.MultiIndex.from_frame(table[["area", "group"]])).reset_index(drop=True),
        weakest_ref.reindex(table["area"]).reset_index(drop=True)))  # fmt: skip
    comparison = pd.DataFrame({"ratio_median": np.nan, "ratio_lower": np.nan,
                               "ratio_upper": np.nan, "diff_lower": lower, "diff_upper": upper,
                               "prob_higher": table["prob_higher"]})  # fmt: skip
    flagged = flag_gaps(comparison, involved, pd.Series(RELIABLE, index=table.index), flag_spec,
                        interval, ("weakest involved", ""), (None, "excess events"))  # fmt: skip
    table["flag"], table["flag_reason"] = flagged["flag"], flagged["flag_reason"]
    return table.rename(columns={"prob_higher": "prob_excess"})


def theil_table(rates: xr.DataArray, population: xr.DataArray, flags: pd.Series,
                interval: float) -> pd.DataFrame:  # fmt: skip
    """Theil's T across groups per place × period. `rates` (chain, draw, area, group, period),
    `population` (area, group, period) the exposure behind each rate; the flag is the weakest
    of the place's group rates (T is never below 0, so it has no "no difference" to exclude)."""
    weights = population / population.sum("group")
    mean = (weights * rates).sum("group")
    relative = rates / mean
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = xr.where(relative > 0, weights * relative * np.log(relative), 0.0)
    theil = terms.sum("group").transpose("chain", "draw", "area", "period")
    draws = flatten(theil.stack(unit=("area", "period")).transpose("chain", "draw", "unit"))
    table = theil.stack(unit=("area", "period"))["unit"].to_index().to_frame(index=False)
    table["theil"] = draws.mean(axis=0, dtype=float)
    table["theil_lower"], table["theil_upper"] = interval_bounds(draws, interval)
    weakest = flags.groupby(level=["area", "period"]).agg(lambda f: worst_flag(f)[0])
    table["flag"] = weakest.reindex(pd.MultiIndex.from_frame(table[["area", "period"]])).to_numpy()
    table["flag_reason"] = [f"the weakest group rate in this place and period is {f}"
                            for f in table["flag"]]  # fmt: skip
    return table
