"""Tables for people: headers in words, numbers rounded as a publication rounds them, place names.

The machine-readable tables (`estimates.csv`, `gaps.csv`) keep every column at full precision.
These are their readable counterparts, used by the report, the place profiles and the
`*_table.csv` files (UTF-8 with a byte-order mark, so Excel shows "≥" and accents as written):

- a rate is rounded to the digits its size calls for (1 decimal for rates per 100,000 around
  10–999; 2 for relative risks around 1), a count to a whole number, a ratio to 2 decimals and a
  probability to 2;
- rounding never changes what a number says about a rule: an interval end that lies above 1 is
  printed with as many more digits (up to 4) as it takes to stay above 1, and likewise below 1
  and for a probability beside the "likely" threshold, so that a printed number never contradicts
  its label;
- the value shown is the one the fit's label uses: the age-adjusted rate when there is an age
  stratum, with its flag.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sae.staging import staged_file
from sae.tables import shown_prefix

MAX_DIGITS = 4


def size_digits(values) -> int:
    """Decimals for numbers of this size: about three significant digits at the median."""
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if not len(finite):
        return 1
    return int(np.clip(2 - np.floor(np.log10(np.median(finite))), 0, MAX_DIGITS))


def side_safe(values, digits: int, thresholds=(1.0,)) -> np.ndarray:
    """`values` rounded to `digits` decimals, or more (up to `MAX_DIGITS`) where rounding would
    move a value onto or across one of `thresholds`."""
    values = np.asarray(values, dtype=float)
    rounded = np.round(values, digits)
    for threshold in thresholds:
        for extra in range(digits + 1, MAX_DIGITS + 1):
            crossed = (np.sign(rounded - threshold) != np.sign(values - threshold)) & np.isfinite(
                values
            )
            rounded = np.where(crossed, np.round(values, extra), rounded)
    return rounded


def shown(value: float, digits: int) -> str:
    """A rounded number as text: at least `digits` decimals, more where `side_safe` kept more."""
    if not np.isfinite(value):
        return "–"
    places = next(
        (k for k in range(digits, MAX_DIGITS + 1) if round(value, k) == value), MAX_DIGITS
    )
    return f"{value:,.{places}f}"


def place_columns(table: pd.DataFrame) -> dict:
    names = table["name"] if "name" in table else table["area"]
    return {"place": names.astype(str).to_numpy(), "place id": table["area"].astype(str).to_numpy()}


def estimates_for_people(fit) -> pd.DataFrame:
    """One row per cell: place, group (and period), events, exposure, the rate the maps show with
    its interval, its reliability and the reason, in words and publication rounding."""
    table = fit.estimates()
    prefix = shown_prefix(table)
    unit, interval = fit.spec.unit_label, fit.spec.output.interval
    digits = size_digits(table[f"{prefix}mean"])
    rate = "age-adjusted rate" if prefix else ("estimate" if fit.spec.model.family == "gaussian"
                                               else "rate")  # fmt: skip
    columns = place_columns(table) | {"group": table["group"].to_numpy()}
    if "period" in table:
        columns["period"] = table["period"].to_numpy()
    if "observed" in table:
        columns["events"] = table["observed"].to_numpy()
        columns[fit.spec.exposure] = table[fit.spec.exposure].round(0).to_numpy()
    else:
        columns["direct estimate"] = np.round(table["direct"].to_numpy(), digits)
    columns |= {
        f"{rate} {unit}".strip(): np.round(table[f"{prefix}mean"].to_numpy(), digits),
        f"{interval:.0%} interval, lower": np.round(table[f"{prefix}lower"].to_numpy(), digits),
        f"{interval:.0%} interval, upper": np.round(table[f"{prefix}upper"].to_numpy(), digits),
        "reliability": table[f"{prefix}flag"].to_numpy(),
        "why": table[f"{prefix}flag_reason"].to_numpy(),
    }
    return pd.DataFrame(columns)


def gaps_for_people(fit, reference: str | None = None) -> pd.DataFrame:
    """One row per place and compared group: the rate ratio and the difference with their
    intervals (rounded so that they never contradict the label), P(higher), P(a gap of at least
    the practical size), the excess events with their interval, and the label with its reason."""
    gaps = fit.gaps(reference)
    interval, flags = fit.spec.output.interval, fit.spec.flags
    columns = place_columns(gaps) | {"group": gaps["group"].to_numpy(),
                                     "compared with": gaps["reference"].to_numpy()}  # fmt: skip
    if "period" in gaps:
        columns["period"] = gaps["period"].to_numpy()
    likely = (1 - flags.gap_possible, flags.gap_possible)
    diff = size_digits(gaps["diff_mean"])
    columns |= {
        "rate ratio": side_safe(gaps["ratio_median"], 2),
        f"{interval:.0%} interval, lower": side_safe(gaps["ratio_lower"], 2),
        f"{interval:.0%} interval, upper": side_safe(gaps["ratio_upper"], 2),
        f"rate difference {fit.spec.unit_label}".strip(): side_safe(
            gaps["diff_mean"], diff, (0.0,)
        ),
        "difference, lower": side_safe(gaps["diff_lower"], diff, (0.0,)),
        "difference, upper": side_safe(gaps["diff_upper"], diff, (0.0,)),
        "P(higher)": side_safe(gaps["prob_higher"], 2, likely),
        f"P(gap ≥ {flags.gap_meaningful_ratio:g}×)": side_safe(gaps["prob_meaningful"], 2, likely),
        "excess events": side_safe(gaps["excess"], 1, (0.0,)),
        "excess, lower": side_safe(gaps["excess_lower"], 1, (0.0,)),
        "excess, upper": side_safe(gaps["excess_upper"], 1, (0.0,)),
        "gap": gaps["flag"].to_numpy(),
        "why": gaps["flag_reason"].to_numpy(),
    }
    return pd.DataFrame(columns)


def covariates_for_people(fit) -> pd.DataFrame:
    """Each covariate and stratum term: its rate ratio per unit of the covariate (count models;
    the coefficient itself for survey estimates), posterior median and interval."""
    beta = fit.idata.posterior["beta"].stack(sample=("chain", "draw")).transpose("sample", "term")
    values = beta.to_numpy()
    count_model = fit.spec.model.family != "gaussian"
    values = np.exp(values) if count_model else values
    tail = (1 - fit.spec.output.interval) / 2
    lower, median, upper = np.quantile(values, [tail, 0.5, 1 - tail], axis=0)
    label = "rate ratio" if count_model else "coefficient"
    no_effect = (1.0,) if count_model else (0.0,)
    return pd.DataFrame({
        "term": beta["term"].to_numpy(),
        label: side_safe(median, 2, no_effect),
        f"{fit.spec.output.interval:.0%} interval, lower": side_safe(lower, 2, no_effect),
        f"{fit.spec.output.interval:.0%} interval, upper": side_safe(upper, 2, no_effect),
    })  # fmt: skip


def write_for_excel(table: pd.DataFrame, path: Path) -> Path:
    """CSV in UTF-8 with a byte-order mark (Excel then reads "≥" and accents correctly)."""
    with staged_file(path) as temporary:
        table.to_csv(temporary, index=False, encoding="utf-8-sig")
    return path
