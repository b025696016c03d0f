"""Reliability flags for every number sae reports, computed from the posterior and the data.

Each estimate gets ``flag`` ∈ {reliable, caution, model-driven, unreliable} and a ``flag_reason``
in words; the worst rule that fires wins and every rule that fired is listed. Thresholds live in
`sae.spec.FlagSpec` ([flags] in a spec); `rules` chooses the rule set.

Rules of every set:
- No data: a cell with no exposure (or no direct estimate) is *unreliable*: its number comes from
  the model alone.
- Data share: the share of the posterior information that comes from the cell's own data,
  Var_post / Var_data (Var_data the variance the data alone would give: for a Poisson rate
  θ² / expected events, summed over the cell's strata with their weights; for a binomial p,
  p(1 − p) / n; for a Fay–Herriot estimate the sampling variance, so the share is the weight on
  the direct estimate). Below `min_data_share` the number is *model-driven*: smoothing can make
  an interval narrow, but it cannot make the data say more (Quick & Song 2024, J. Off. Stat.;
  Quick, Song & Tabb 2021).
- Convergence (NUTS: R-hat > `max_rhat`, bulk ESS < `min_ess`, divergences) or an unreliable
  Laplace correction (Pareto k̂ > 0.7) make a number *unreliable*.

Rule sets:
- ``nchs`` (default). Rates: RSE = sd / |mean| ≥ 0.30 *unreliable* (NCHS standard for rates and
  counts; Klein et al. 2002); relative interval width > 1.6 *unreliable* (NCHS Data Presentation
  Standards for rates, 2023); RSE 0.20–0.30 *caution*; fewer than 20 events *caution* (NCHS does
  not publish direct rates on < 20 events). Proportions (binomial counts, and prevalences from
  logit or arcsine Fay–Herriot models), following Parker et al. (2017), NCHS Data Presentation
  Standards for Proportions, Vital Health Stat 2(175): effective sample size p(1 − p) / var < 30,
  absolute interval width ≥ 0.30, or, when the width exceeds 0.05, relative width > 130% are
  *unreliable* (the relative width taken against min(p, 1 − p), so p and 1 − p are judged alike);
  no RSE rule.
- ``quick2024``: relative precision, the posterior median divided by the width of its interval,
  below 1 is *unreliable* (Quick & Song 2024).
- ``uscs``: fewer than 16 events is *unreliable* (U.S. Cancer Statistics suppression rule).

Gaps between groups are flagged by their own uncertainty: ``clear`` when the interval of the rate
ratio (or difference) excludes no difference, ``likely`` when P(higher) ≥ `gap_possible` (or ≤
1 − it), ``uncertain`` otherwise; the flags of the two rates are named in the reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sae.diagnostics import PARETO_K_LIMIT
from sae.spec import FlagSpec

RELIABLE, CAUTION, MODEL_DRIVEN, UNRELIABLE = "reliable", "caution", "model-driven", "unreliable"
SEVERITY = {RELIABLE: 0, CAUTION: 1, MODEL_DRIVEN: 2, UNRELIABLE: 3}
FLAGS = tuple(SEVERITY)
PROPORTION_MIN_EFFECTIVE_N = 30  # Parker et al. (2017)
PROPORTION_MAX_ABSOLUTE_WIDTH = 0.30
PROPORTION_RELATIVE_WIDTH_FROM = 0.05
PROPORTION_MAX_RELATIVE_WIDTH = 1.30
USCS_MIN_EVENTS = 16


def flag_estimates(
    table: pd.DataFrame, flags: FlagSpec, divergences: int, proportion_scale: float | None = None
) -> pd.DataFrame:
    """Flags for a table with mean, median, sd, lower, upper, rhat, ess_bulk, observed, has_data
    and, where known, data_share and pareto_k. `proportion_scale` (100 for percent, 1 for a
    fraction) marks numbers that are proportions.

    Returns a frame with ``flag`` and ``flag_reason``, aligned with `table`.
    """
    values = table.assign(
        rse=table["sd"] / table["mean"].abs(),
        width=(table["upper"] - table["lower"]) / table["mean"].abs(),
    )
    rules = common_rules(values, flags, divergences)
    if flags.rules == "nchs":
        rules += (
            nchs_proportion_rules(values, proportion_scale)
            if proportion_scale
            else nchs_rate_rules(values, flags)
        )
    elif flags.rules == "quick2024":
        rules += quick_rules(values)
    else:
        rules += uscs_rules(values)
    return with_censoring_noted(values, apply_rules(values, rules))


def with_censoring_noted(values: pd.DataFrame, flagged: pd.DataFrame) -> pd.DataFrame:
    """Every unit whose count was censored, or that holds events of unknown group, says so in
    its reason, whatever its flag."""
    censored = column(values, "observed").isna() & column(values, "observed_upper").notna()
    for index in values.index[censored & ~flagged["flag_reason"].str.contains("suppressed")]:
        note = f"{events_text(values.loc[index])}, fitted as ranges"
        flagged.loc[index, "flag_reason"] += f"; {note}"
    allocated = column(values, "unknown_allocated")
    for index in values.index[allocated >= 0.5]:
        row = values.loc[index]
        flagged.loc[index, "flag_reason"] += (
            f"; about {row.unknown_allocated:.0f} ({row.unknown_allocated_lower:.0f}–"
            f"{row.unknown_allocated_upper:.0f}) events without a recorded group shared out to it "
            "(under the assumption on missing race that the report states)"
        )
    return flagged


def column(values: pd.DataFrame, name: str) -> pd.Series:
    return values[name] if name in values else pd.Series(np.nan, index=values.index)


def common_rules(values: pd.DataFrame, flags: FlagSpec, divergences: int) -> list:
    share = column(values, "data_share")
    return [
        (UNRELIABLE, ~values["has_data"],
         lambda r: "no data in this cell: estimate from the model and neighbours alone"),
        (UNRELIABLE, (values["rhat"] > flags.max_rhat) | (values["ess_bulk"] < flags.min_ess),
         lambda r: f"not converged (R-hat {r.rhat:.3f}, bulk ESS {r.ess_bulk:.0f})"),
        (UNRELIABLE, pd.Series(divergences > 0, index=values.index),
         lambda r: f"{divergences} divergent transitions in the run"),
        (UNRELIABLE, column(values, "pareto_k") > PARETO_K_LIMIT,
         lambda r: (f"the Laplace approximation could not be checked here (Pareto k̂ "
                    f'{r.pareto_k:.2f} > {PARETO_K_LIMIT}): check with method = "nuts"')),
        (MODEL_DRIVEN, values["has_data"] & (share < flags.min_data_share),
         lambda r: (f"model-driven: the data carry {r.data_share:.0%} of the information "
                    f"(< {flags.min_data_share:.0%})")),
    ]  # fmt: skip


def nchs_rate_rules(values: pd.DataFrame, flags: FlagSpec) -> list:
    rse = values["rse"]
    return [
        (UNRELIABLE, rse >= flags.rse_unreliable,
         lambda r: f"RSE {r.rse:.1%} ≥ {flags.rse_unreliable:.0%}"),
        (UNRELIABLE, values["width"] > flags.relative_width_unreliable,
         lambda r: (f"interval width {r.width:.0%} of the estimate > "
                    f"{flags.relative_width_unreliable:.0%}")),
        (CAUTION, (rse >= flags.rse_caution) & (rse < flags.rse_unreliable),
         lambda r: f"RSE {r.rse:.1%} ≥ {flags.rse_caution:.0%}"),
        (CAUTION, values["has_data"] & (most_events(values) < flags.min_events),
         lambda r: f"{events_text(r)} (< {flags.min_events}): leans on pooled information"),
    ]  # fmt: skip


def nchs_proportion_rules(values: pd.DataFrame, scale: float) -> list:
    """Parker et al. (2017), on the proportion scale."""
    p = values["mean"] / scale
    width = (values["upper"] - values["lower"]) / scale
    effective_n = p * (1 - p) / (values["sd"] / scale) ** 2
    relative = width / np.minimum(p, 1 - p)
    frame = values.assign(effective_n=effective_n, absolute_width=width, relative=relative)
    return [
        (UNRELIABLE, effective_n < PROPORTION_MIN_EFFECTIVE_N,
         lambda r, f=frame: (f"effective sample size {f.effective_n[r.name]:.0f} < "
                             f"{PROPORTION_MIN_EFFECTIVE_N}")),
        (UNRELIABLE, width >= PROPORTION_MAX_ABSOLUTE_WIDTH,
         lambda r, f=frame: (f"interval width {f.absolute_width[r.name]:.2f} ≥ "
                             f"{PROPORTION_MAX_ABSOLUTE_WIDTH:.2f}")),
        (UNRELIABLE, (width > PROPORTION_RELATIVE_WIDTH_FROM) & (relative > PROPORTION_MAX_RELATIVE_WIDTH),
         lambda r, f=frame: (f"relative interval width {f.relative[r.name]:.0%} > "
                             f"{PROPORTION_MAX_RELATIVE_WIDTH:.0%}")),
    ]  # fmt: skip


def quick_rules(values: pd.DataFrame) -> list:
    precision = values["median"] / (values["upper"] - values["lower"])
    frame = values.assign(precision=precision)
    return [(UNRELIABLE, precision < 1.0,
             lambda r, f=frame: f"relative precision {f.precision[r.name]:.2f} < 1")]  # fmt: skip


def uscs_rules(values: pd.DataFrame) -> list:
    return [(UNRELIABLE, values["has_data"] & (most_events(values) < USCS_MIN_EVENTS),
             lambda r: f"{events_text(r)} (< {USCS_MIN_EVENTS})")]  # fmt: skip


def most_events(values: pd.DataFrame) -> pd.Series:
    """The unit's count, or the largest it can be where a count was censored (suppressed)."""
    return column(values, "observed").fillna(column(values, "observed_upper"))


def events_text(row) -> str:
    if "observed_upper" in row and row.observed_upper > row.observed_lower:
        return (
            f"counts suppressed ({row.observed_lower:.0f}–{row.observed_upper:.0f} events in all)"
        )
    return f"{row.observed:.0f} events"


def apply_rules(values: pd.DataFrame, rules: list) -> pd.DataFrame:
    flag = pd.Series(RELIABLE, index=values.index)
    reasons: list[list[str]] = [[] for _ in range(len(values))]
    for level, fired, describe in rules:
        fired = fired.fillna(False).to_numpy(bool)
        for position in np.flatnonzero(fired):
            reasons[position].append(describe(values.iloc[position]))
        worse = fired & (flag.map(SEVERITY).to_numpy() < SEVERITY[level])
        flag[worse] = level
    text = ["; ".join(found) if found else reliable_reason(values.iloc[i])
            for i, found in enumerate(reasons)]  # fmt: skip
    return pd.DataFrame({"flag": flag, "flag_reason": text}, index=values.index)


def reliable_reason(row) -> str:
    share = (
        f", data carry {row.data_share:.0%} of the information"
        if "data_share" in row and pd.notna(row.data_share)
        else ""
    )
    return f"RSE {row.rse:.0%}, interval width {row.width:.0%} of the estimate{share}"


CLEAR, LIKELY, UNCERTAIN = "clear", "likely", "uncertain"
GAP_FLAGS = (CLEAR, LIKELY, UNCERTAIN)


def flag_gaps(
    table: pd.DataFrame, target_flag: pd.Series, reference_flag: pd.Series, flags: FlagSpec,
    interval: float, sides: tuple[str, str] = ("group's", "reference"),
    measures: tuple[str | None, str] = ("rate ratio", "difference"),
    directions: tuple[str, str] = ("higher", "lower"),
) -> pd.DataFrame:  # fmt: skip
    """Gap flags by the gap's own uncertainty, so that the word and the interval agree.

    ``clear``: the interval of the rate ratio excludes 1 (or, where no ratio is defined, the
    difference's excludes 0); ``likely``: P(higher) ≥ `gap_possible` or ≤ 1 − `gap_possible`;
    ``uncertain`` otherwise. The reason gives P(higher) and names a rate that is not reliable.
    The words are the caller's: `sides` names the two rates (a trend compares the last period
    with the first), `measures` the ratio and the difference (a ratio of None: there is none by
    design, so its absence needs no note), `directions` the two ways it can go.
    """
    flag, excludes, certainty, higher = certainty_flags(table, flags)
    direction = np.where(higher == "higher", *directions)
    ratio_defined = table["ratio_median"].notna()
    measure = np.where(ratio_defined, measures[0] or "", measures[1])
    reason = [
        f"the {interval:.0%} interval of the {m} {'excludes' if e else 'includes'} no difference; "
        f"P({d}) = {c:.3f}"
        for m, e, d, c in zip(measure, excludes, direction, certainty, strict=True)
    ]
    for i in range(len(reason)):
        weak = [f"the {side} rate is {f}" for side, f in ((sides[0], target_flag.iloc[i]),
                                                          (sides[1], reference_flag.iloc[i]))
                if f != RELIABLE]  # fmt: skip
        if weak:
            reason[i] += "; " + "; ".join(weak)
        if not ratio_defined.iloc[i] and measures[0] is not None:
            reason[i] += (
                "; no rate ratio: the reference's posterior reaches 0 (read the difference)"
            )
    return pd.DataFrame({"flag": flag, "flag_reason": reason}, index=table.index)


def certainty_flags(table: pd.DataFrame, flags: FlagSpec):
    """clear / likely / uncertain from a comparison's ratio (or difference) interval and
    P(higher): the flag, whether the interval excludes no difference, max(P, 1 − P), and the
    direction ("higher" or "lower")."""
    ratio_defined = table["ratio_median"].notna()
    low = np.where(ratio_defined, table["ratio_lower"] - 1.0, table["diff_lower"])
    high = np.where(ratio_defined, table["ratio_upper"] - 1.0, table["diff_upper"])
    excludes = (low > 0) | (high < 0)
    prob = table["prob_higher"].to_numpy()
    certainty = np.maximum(prob, 1.0 - prob)
    flag = np.where(excludes, CLEAR, np.where(certainty >= flags.gap_possible, LIKELY, UNCERTAIN))
    return flag, excludes, certainty, np.where(prob >= 0.5, "higher", "lower")


def worst_flag(*columns: pd.Series) -> np.ndarray:
    """Row by row, the most severe of several reliability flags."""
    severity = np.max([c.map(SEVERITY).to_numpy() for c in columns], axis=0)
    return np.array(FLAGS)[severity]


def rules_in_words(flags: FlagSpec, proportions: bool) -> str:
    """The rules of `flags` as one paragraph, for reports and map captions."""
    common = (
        f"Numbers are unreliable when the cell has no data or the draws cannot be trusted, and "
        f"model-driven when the cell's own data carry less than {flags.min_data_share:.0%} of the "
        "information."
    )
    if flags.rules == "quick2024":
        specific = "They are unreliable when the median is smaller than the width of the interval."
    elif flags.rules == "uscs":
        specific = f"They are unreliable when based on fewer than {USCS_MIN_EVENTS} events."
    elif proportions:
        specific = (
            f"Proportions are unreliable when their effective sample size is below "
            f"{PROPORTION_MIN_EFFECTIVE_N}, their interval is {PROPORTION_MAX_ABSOLUTE_WIDTH:.2f} "
            f"wide or more, or (wider than {PROPORTION_RELATIVE_WIDTH_FROM:.2f}) more than "
            f"{PROPORTION_MAX_RELATIVE_WIDTH:.0%} of the smaller of p and 1 − p."
        )
    else:
        specific = (
            f"Rates are unreliable when the RSE is {flags.rse_unreliable:.0%} or more or the "
            f"interval is wider than {flags.relative_width_unreliable:.1f} × the estimate, and "
            f"need caution when the RSE is {flags.rse_caution:.0%} or more or they rest on fewer "
            f"than {flags.min_events} events."
        )
    gaps = (
        "A gap is clear when its 95% interval excludes no difference, likely when the probability "
        f"that one rate is higher is at least {flags.gap_possible:.2f}, and uncertain otherwise."
    )
    return f"{common} {specific} {gaps}"
