"""Plain-language sentences from a fit's results, never more certain than its intervals and flags.

Each sentence carries the interval of every number it gives and words chosen by the gap's label:

- a **clear** gap (its interval excludes no difference): "we are 99% sure it is higher";
- a **likely** gap (P(higher) ≥ [flags] gap_possible): "it is probably higher (91% sure), but
  the data do not rule out no difference";
- an **uncertain** gap: "the data cannot tell whether it is higher or lower".

Certainty is P(higher) (or P(lower)) rounded *down* to a whole percent, "more than 99%" above
0.99, so a sentence never claims more than the posterior does. A rate that is not reliable says
so, with its flag, in the same sentence's paragraph.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sae.fit_maps import latest_rows
from sae.publication import shown, side_safe, size_digits
from sae.reliability import CLEAR, LIKELY, RELIABLE, certainty_flags
from sae.tables import shown_prefix


def sure(probability: float) -> str:
    """A probability as a whole percentage rounded down ("more than 99%" above 0.99)."""
    if probability > 0.99:
        return "more than 99%"
    return f"{math.floor(100 * probability)}%"


def number(value: float, like=None) -> str:
    """A rate in words: about two or three significant digits, thousands separated."""
    digits = max(0, size_digits([value] if like is None else like) - 1)
    return f"{value:,.{digits}f}"


def certainty_words(flag: str, prob_higher: float) -> str:
    direction = "higher" if prob_higher >= 0.5 else "lower"
    p = max(prob_higher, 1 - prob_higher)
    if flag == CLEAR:
        return f"we are {sure(p)} sure it is {direction}"
    if flag == LIKELY:
        return (f"it is probably {direction} ({sure(p)} sure), but the data do not rule out "
                "no difference")  # fmt: skip
    return f"the data cannot tell whether it is higher or lower ({sure(p)} sure it is {direction})"


def rate_words(rate: float, lower: float, upper: float, unit: str, interval: float) -> str:
    like = [lower, rate, upper]
    return (f"about {number(rate, like)} {unit} ({interval:.0%} interval {number(lower, like)} "
            f"to {number(upper, like)})")  # fmt: skip


def ratio_words(ratio: float, lower: float, upper: float) -> str:
    if np.isnan(ratio):
        return "a rate ratio that cannot be computed (the reference rate may be 0)"
    ratio, lower, upper = side_safe([ratio, lower, upper], 2)
    return f"{shown(ratio, 2)} times (between {shown(lower, 2)} and {shown(upper, 2)})"


def gap_sentence(where: str, basis: str, group: str, reference: str, rate: tuple, ratio: tuple,
                 flag: str, prob_higher: float, unit: str, interval: float) -> str:  # fmt: skip
    """ "In Allegheny, the age-adjusted rate of the non-white group is about 91 per 100,000 (95%
    interval 79 to 105), 1.20 times (between 1.05 and 1.38) the rate of the white group; we are
    99% sure it is higher.\""""
    return (f"{where}, the {basis}rate of the {group} group is {rate_words(*rate, unit, interval)}, "
            f"{ratio_words(*ratio)} the rate of the {reference} group; "
            f"{certainty_words(flag, prob_higher)}.")  # fmt: skip


def flag_note(flag: str, reason: str) -> str:
    if flag == RELIABLE:
        return ""
    short = reason.split(":")[0] if ":" in reason else flag
    return f" That {short} rate should be read with care ({reason})."


def basis(fit) -> str:
    return "age-adjusted " if fit.spec.output.age_stratum else ""


def summary_sentences(fit, places_named: int = 3) -> list[str]:
    """The report's summary: map-wide gaps, how many places have clear / likely / uncertain
    gaps, the places with the most excess events, and how many rates are reliable."""
    sentences = []
    unit, interval = fit.spec.unit_label, fit.spec.output.interval
    when = f" in {fit.periods[-1]}" if fit.periods else ""
    estimates = latest_rows(fit.estimates(), fit)
    if len(fit.design.groups) > 1:
        overall, gaps = latest_rows(fit.overall(), fit), latest_rows(fit.gaps(), fit)
        prefix = shown_prefix(overall)
        reference = fit.reference_group
        compared = overall[overall["group"] != reference]
        # the gaps' own rule (`reliability.certainty_flags`); map-wide ratios are always defined
        flags = certainty_flags(compared.assign(diff_lower=np.nan, diff_upper=np.nan),
                                fit.spec.flags)[0]  # fmt: skip
        for row, flag in zip(compared.itertuples(index=False), flags, strict=True):
            rate = tuple(getattr(row, prefix + k) for k in ("mean", "lower", "upper"))
            ratio = (row.ratio_median, row.ratio_lower, row.ratio_upper)
            sentences.append(gap_sentence(f"Across all {fit.inputs.graph.n_areas} places{when}",
                                          basis(fit), row.group, reference, rate, ratio, flag,
                                          row.prob_higher, unit, interval))  # fmt: skip
        counts = gaps["flag"].value_counts()
        sentences.append(
            f"Place by place{when}, the gap against the {reference} group is clear in "
            f"{counts.get('clear', 0)}, likely in {counts.get('likely', 0)} and uncertain in "
            f"{counts.get('uncertain', 0)} of {len(gaps)} comparisons."
        )
        sentences += place_sentences(fit, gaps, estimates, places_named)
    else:
        sentences.append(range_sentence(fit, estimates))
    sentences.append(reliability_sentence(estimates))
    return sentences


def range_sentence(fit, estimates: pd.DataFrame) -> str:
    """Without groups: the places with the highest and the lowest rate, with intervals and flags."""
    prefix = shown_prefix(estimates)
    shown = estimates[estimates["has_data"]]
    names = fit.inputs.names
    unit, interval = fit.spec.unit_label, fit.spec.output.interval
    parts = []
    for word, row in (("highest", shown.loc[shown[prefix + "mean"].idxmax()]),
                      ("lowest", shown.loc[shown[prefix + "mean"].idxmin()])):  # fmt: skip
        place = names.get(row["area"], row["area"]) if names is not None else row["area"]
        rate = rate_words(row[prefix + "mean"], row[prefix + "lower"], row[prefix + "upper"], unit,
                          interval)  # fmt: skip
        parts.append(f"the {word} {basis(fit)}estimate is in {place}, {rate}, "
                     f"flagged {row[prefix + 'flag']}")  # fmt: skip
    return f"Of {len(shown)} places with data, " + "; ".join(parts) + "."


def place_sentences(fit, gaps, estimates, count: int) -> list[str]:
    """The places with the most excess events where the gap is clear, one sentence each."""
    clear = gaps[gaps["flag"] == CLEAR].sort_values("excess", ascending=False).head(count)
    return [place_gap_sentence(fit, row, estimates) for row in clear.itertuples(index=False)]


def place_gap_sentence(fit, gap, estimates) -> str:
    names = fit.inputs.names
    where = "In " + (str(names.get(gap.area, gap.area)) if names is not None else str(gap.area))
    cell = estimates[(estimates["area"] == gap.area) & (estimates["group"] == gap.group)].iloc[0]
    prefix = shown_prefix(estimates)
    rate = (cell[prefix + "mean"], cell[prefix + "lower"], cell[prefix + "upper"])
    ratio = (gap.ratio_median, gap.ratio_lower, gap.ratio_upper)
    text = gap_sentence(where, basis(fit), gap.group, gap.reference, rate, ratio, gap.flag,
                        gap.prob_higher, fit.spec.unit_label, fit.spec.output.interval)  # fmt: skip
    if not np.isnan(gap.excess):
        text += (f" That is about {gap.excess:,.0f} more events ({fit.spec.output.interval:.0%} "
                 f"interval {gap.excess_lower:,.0f} to {gap.excess_upper:,.0f}) than at the "
                 f"{gap.reference} group's rate.") if gap.excess >= 0.5 else ""  # fmt: skip
    return text + flag_note(cell[prefix + "flag"], cell[prefix + "flag_reason"])


def reliability_sentence(estimates: pd.DataFrame) -> str:
    flag = estimates["adj_flag"] if "adj_flag" in estimates else estimates["flag"]
    counts = flag.value_counts()
    total = len(flag)
    n = {
        flag: counts.get(flag, 0) for flag in ("reliable", "caution", "model-driven", "unreliable")
    }
    return (f"Of the {total} rates, {n['reliable']} {verb(n['reliable'], 'is', 'are')} reliable, "
            f"{n['caution']} {verb(n['caution'], 'needs', 'need')} caution, {n['model-driven']} "
            f"{verb(n['model-driven'], 'leans', 'lean')} mainly on neighbouring places and other "
            f"groups (model-driven) and {n['unreliable']} {verb(n['unreliable'], 'is', 'are')} "
            "unreliable; every table and map marks which.")  # fmt: skip


def verb(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def place_profile_sentences(fit, area: str) -> list[str]:
    """Each group's rate in one place, and each gap against the reference (latest period)."""
    estimates = latest_rows(fit.estimates(), fit)
    rows = estimates[estimates["area"] == area]
    prefix = shown_prefix(estimates)
    unit, interval = fit.spec.unit_label, fit.spec.output.interval
    sentences = []
    for cell in rows.itertuples(index=False):
        cell = cell._asdict()
        rate = rate_words(cell[prefix + "mean"], cell[prefix + "lower"], cell[prefix + "upper"],
                          unit, interval)  # fmt: skip
        sentences.append(f"The {basis(fit)}rate of the {cell['group']} group is {rate}."
                         + flag_note(cell[prefix + "flag"], cell[prefix + "flag_reason"]))  # fmt: skip
    if len(fit.design.groups) > 1:
        gaps = latest_rows(fit.gaps(), fit)
        for gap in gaps[gaps["area"] == area].itertuples(index=False):
            sentences.append(
                f"Against the {gap.reference} group, the {gap.group} group's rate is "
                f"{ratio_words(gap.ratio_median, gap.ratio_lower, gap.ratio_upper)} as high; "
                f"{certainty_words(gap.flag, gap.prob_higher)}."
            )
    return sentences
