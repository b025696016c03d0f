"""Change over time in a space–time fit, computed draw by draw from one posterior.

For cell (area i, group g) and the first and last periods 1 and T of a range:

    trend:      θ_igT / θ_ig1 (median, interval), θ_igT − θ_ig1, P(decline) = P(θ_igT < θ_ig1)

and for the gap of g against a reference r (another group, or the place's all-groups rate),
RR_t = θ_igt / θ_irt and RD_t = θ_igt − θ_irt:

    gap trend:  RR_T / RR_1 and RD_T − RD_1 (intervals),
                P(narrowing) = P(|log RR_T| < |log RR_1|): the ratio moves towards 1,
                P(narrowing, difference) = P(|RD_T| < |RD_1|).

Because both periods come from the same draws, a change carries the uncertainty of both periods
and their correlation (a smoothed series is correlated over time, so separate intervals would
mislead). Flags follow the gaps' rule (`sae.reliability.flag_gaps`): ``clear`` only when the
change's interval excludes no change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from sae.gaps import compare_draws, interval_bounds
from sae.posterior import flatten
from sae.reliability import RELIABLE, flag_gaps, worst_flag

TREND_COLUMNS = (
    "area", "group", "first_period", "last_period", "first_mean", "first_lower", "first_upper",
    "last_mean", "last_lower", "last_upper", "ratio_median", "ratio_lower", "ratio_upper", "diff_mean", "diff_lower", "diff_upper",
    "prob_decline", "flag", "flag_reason",
)  # fmt: skip
GAP_TREND_COLUMNS = (
    "area", "group", "reference", "first_period", "last_period",
    "first_ratio", "first_ratio_lower", "first_ratio_upper", "last_ratio", "last_ratio_lower",
    "last_ratio_upper", "ratio_change_median", "ratio_change_lower", "ratio_change_upper",
    "first_diff", "first_diff_lower", "first_diff_upper", "last_diff", "last_diff_lower",
    "last_diff_upper", "diff_change_mean", "diff_change_lower", "diff_change_upper",
    "prob_narrowing", "prob_narrowing_difference", "flag", "flag_reason",
)  # fmt: skip


def pairs(draws: xr.DataArray, period) -> np.ndarray:
    """(sample, area × group) draws of one period, areas outer."""
    one = draws.sel(period=period).stack(unit=("area", "group")).transpose("chain", "draw", "unit")
    return flatten(one)


def keys_of(draws: xr.DataArray) -> pd.DataFrame:
    return pd.DataFrame({
        "area": np.repeat(draws["area"].to_numpy(), draws.sizes["group"]),
        "group": np.tile(draws["group"].to_numpy(), draws.sizes["area"]),
    })  # fmt: skip


def trend_table(rates: xr.DataArray, flags: pd.Series, first, last, interval: float,
                flag_spec) -> pd.DataFrame:  # fmt: skip
    """One row per area × group: the change of its rate from period `first` to `last`.

    `rates` has dims (chain, draw, area, group, period); `flags` is the cells' flag indexed by
    (area, group, period)."""
    start, end = pairs(rates, first), pairs(rates, last)
    table = pd.concat([keys_of(rates), compare_draws(end, start, interval)], axis=1)
    table["first_period"], table["last_period"] = first, last
    for name, draws in (("first", start), ("last", end)):
        table[f"{name}_mean"] = draws.mean(axis=0, dtype=float)
        table[f"{name}_lower"], table[f"{name}_upper"] = interval_bounds(draws, interval)
    table["prob_decline"] = (end < start).mean(axis=0, dtype=float)
    table = pd.concat([table, flag_gaps(table, flags_at(flags, table, last),
                                        flags_at(flags, table, first), flag_spec, interval,
                                        ("last period's", "first period's"))], axis=1)  # fmt: skip
    return table[list(TREND_COLUMNS)]


def gap_trend_table(target: xr.DataArray, reference: xr.DataArray, label: str, flags: pd.Series,
                    reference_flags: pd.Series, first, last, interval: float,
                    flag_spec) -> pd.DataFrame:  # fmt: skip
    """One row per area × group of `target` (chain, draw, area, group, period): the change of its
    gap against `reference` (the same dims, or without group) from `first` to `last`.

    `flags` are the cells' flags by (area, group, period), `reference_flags` the reference's by
    (area, period) or (area, group, period) with the reference group."""
    reference = reference.broadcast_like(target)
    ratio, difference = target / reference, target - reference
    ratio_1, ratio_t = pairs(ratio, first), pairs(ratio, last)
    diff_1, diff_t = pairs(difference, first), pairs(difference, last)
    change = compare_draws(ratio_t, ratio_1, interval)  # RR_T / RR_1 and P(RR_T > RR_1)
    table = keys_of(target)
    table["reference"], table["first_period"], table["last_period"] = label, first, last
    for name, ratios, diffs in (("first", ratio_1, diff_1), ("last", ratio_t, diff_t)):
        table[f"{name}_ratio"] = np.median(ratios, axis=0)
        table[f"{name}_ratio_lower"], table[f"{name}_ratio_upper"] = interval_bounds(
            ratios, interval
        )
        table[f"{name}_diff"] = diffs.mean(axis=0, dtype=float)
        table[f"{name}_diff_lower"], table[f"{name}_diff_upper"] = interval_bounds(diffs, interval)
    table["ratio_change_median"] = change["ratio_median"]
    table["ratio_change_lower"], table["ratio_change_upper"] = (
        change["ratio_lower"],
        change["ratio_upper"],
    )
    steps = diff_t - diff_1
    table["diff_change_mean"] = steps.mean(axis=0, dtype=float)
    table["diff_change_lower"], table["diff_change_upper"] = interval_bounds(steps, interval)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["prob_narrowing"] = (np.abs(np.log(ratio_t)) < np.abs(np.log(ratio_1))).mean(
            axis=0, dtype=float
        )
    table["prob_narrowing_difference"] = (np.abs(diff_t) < np.abs(diff_1)).mean(axis=0, dtype=float)
    cells = [flags_at(flags, table, p) for p in (first, last)]
    cells += [flags_at(reference_flags, table, p) for p in (first, last)]
    weakest = pd.Series(worst_flag(*cells))
    flagged = flag_gaps(change, weakest, pd.Series(RELIABLE, index=weakest.index), flag_spec,
                        interval, ("weakest involved", ""),
                        ("change of the rate ratio", "change of the ratio's difference"),
                        ("the ratio grew", "it shrank"))  # fmt: skip
    table["flag"] = flagged["flag"]
    table["flag_reason"] = flagged["flag_reason"] + [
        f"; P(narrowing) = {p:.3f}" for p in table["prob_narrowing"]
    ]
    return table[list(GAP_TREND_COLUMNS)]


def flags_at(flags: pd.Series, table: pd.DataFrame, period) -> pd.Series:
    """The flag of each row's (area, group[, period]) in `flags` (indexed by its keys)."""
    names = list(flags.index.names)
    keys = table[[n for n in names if n != "period"]].assign(period=period)[names]
    return flags.reindex(pd.MultiIndex.from_frame(keys)).reset_index(drop=True)
