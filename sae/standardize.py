"""Direct age standardisation: age-adjusted rate = Σ_a w_a θ_a, with standard-population weights.

The default standard is the 2000 U.S. standard population (19 groups, `sae/reference/`), summed
into the data's own age bands. Band labels are read as age ranges: ``Under.40``, ``<40``,
``40.59``, ``40-59``, ``40_59``, ``70+``, ``85 and over``. A band that does not line up with the
standard's groups, or bands that overlap or leave a gap, are errors.

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
    """Weights for the data's age bands, summed from the 2000 U.S. standard (they add up to 1)."""
    standard = standard_population()
    ranges = {band: age_range(band) for band in bands}
    check_bands_tile_ages(ranges)
    weights = {}
    for band, (low, high) in ranges.items():
        inside = (standard["age_low"] >= low) & (standard["age_high"] <= high)
        straddles = (standard["age_low"] <= high) & (standard["age_high"] >= low) & ~inside
        if straddles.any():
            raise SaeInputError(
                f"age band {band!r} cuts through the standard population's group(s) "
                f"{', '.join(standard.loc[straddles, 'age_group'])}; use bands that start at 0, 1 "
                "or a multiple of 5, or give your own weights in [output] standard_population."
            )
        weights[band] = standard.loc[inside, "weight"].sum()
    return pd.Series(weights)


def check_bands_tile_ages(ranges: dict[str, tuple[float, float]]) -> None:
    """Bands must run from age 0 to an open top band without gaps or overlaps."""
    ordered = sorted(ranges.items(), key=lambda item: item[1][0])
    expected_low = 0.0
    for band, (low, high) in ordered:
        if low != expected_low:
            raise SaeInputError(
                f"age bands leave a gap or overlap before {band!r} (starts at {low:g}, expected "
                f"{expected_low:g}). Bands must cover every age once."
            )
        expected_low = high + 1
    if expected_low != OPEN_END:
        raise SaeInputError("the oldest age band must be open-ended (e.g. '85+', '70+').")


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
