"""Direct age standardisation: age-adjusted rate = Σ_a w_a θ_a, with standard-population weights.

The default standard is the 2000 U.S. standard population (19 groups, `sae/reference/`), summed
into the data's own age bands. Band labels are read as age ranges: ``Under.40``, ``<40``,
``40.59``, ``40-59``, ``40_59``, ``18+``, ``85 and over``. The bands must be contiguous (no gap,
no overlap) but may cover only part of life (adults 18+, 40–64, BRFSS-style bands): the standard
is then truncated to the covered ages and renormalised. A band that cuts through a standard group
(18+ cuts 15–19) takes the share of that group's weight its years cover, ages being taken as
uniform within the group.

Reference: Anderson RN, Rosenberg HM (1998). Age standardization of death rates: implementation
of the year 2000 standard. National Vital Statistics Reports 47(3).
"""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pandas as pd

from sae.errors import SaeInputError

OPEN_END = np.inf


def age_range(label: str) -> tuple[float, float]:
    """(low, high) in whole years, inclusive; high is inf for an open band."""
    text = label.strip().lower()
    if m := re.fullmatch(r"(?:under|<)\s*[._ ]?\s*(\d+)", text):
        return 0.0, float(m[1]) - 1
    if m := re.fullmatch(r"(\d+)\s*(?:\+|[._ ]?plus|\s+and\s+(?:over|older))", text):
        return float(m[1]), OPEN_END
    if m := re.fullmatch(r"(\d+)\s*[-._]\s*(\d+)", text):
        return float(m[1]), float(m[2])
    raise SaeInputError(
        f"age band {label!r} is not an age range sae can read. Use labels like '40-59', "
        "'Under 40' or '70+', or give your own weights in [output] standard_population."
    )


def standard_population() -> pd.DataFrame:
    """The 2000 U.S. standard million in 19 groups: age_low, age_high (inf for 85+), weight."""
    path = resources.files("sae") / "reference" / "us2000_standard_million_19.csv"
    with path.open() as handle:
        table = pd.read_csv(handle)
    table["age_high"] = table["age_high"].fillna(OPEN_END)
    table["weight"] = table["standard_million"] / table["standard_million"].sum()
    return table


def standard_weights(bands: list[str]) -> pd.Series:
    """Weights for the data's age bands from the 2000 U.S. standard, truncated to the ages the
    bands cover and renormalised (they add up to 1)."""
    standard = standard_population()
    ranges = {band: age_range(band) for band in bands}
    check_bands_are_contiguous(ranges)
    low, high = standard["age_low"].to_numpy(), standard["age_high"].to_numpy()
    years = np.where(np.isinf(high), 1.0, high - low + 1)
    weights = {}
    for band, (band_low, band_high) in ranges.items():
        overlap = np.minimum(high, band_high) - np.maximum(low, band_low) + 1
        overlap = np.where(np.isinf(high) & (band_high == OPEN_END), 1.0, np.clip(overlap, 0, None))
        weights[band] = float((standard["weight"] * np.minimum(overlap / years, 1.0)).sum())
    weights = pd.Series(weights)
    return weights / weights.sum()


def check_bands_are_contiguous(ranges: dict[str, tuple[float, float]]) -> None:
    """Bands must follow each other without gaps or overlaps."""
    ordered = sorted(ranges.items(), key=lambda item: item[1][0])
    expected_low = ordered[0][1][0]
    for band, (low, high) in ordered:
        if low != expected_low:
            raise SaeInputError(
                f"age bands leave a gap or overlap before {band!r} (starts at {low:g}, expected "
                f"{expected_low:g}). Bands must follow each other, each age once."
            )
        expected_low = high + 1


def user_weights(table: pd.DataFrame, bands: list[str], source: str) -> pd.Series:
    """Weights from a user file with columns `age` (the band labels) and `weight`."""
    missing = [c for c in ("age", "weight") if c not in table]
    if missing:
        raise SaeInputError(f"{source}: missing column(s) {missing}; give `age` and `weight`.")
    weights = table.set_index(table["age"].astype(str))["weight"].astype(float)
    absent = sorted(set(bands) - set(weights.index))
    if absent:
        raise SaeInputError(f"{source}: no weight for age band(s) {absent}. Add a row for each.")
    weights = weights.loc[bands]
    return weights / weights.sum()
