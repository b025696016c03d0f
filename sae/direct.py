"""Direct survey estimates for Fay–Herriot models: validation and a generalised variance function.

A cell whose sampling variance is zero or missing (e.g. a prevalence of 0 or 1 in a small sample)
is never used as if it were exact. When sample sizes are given, its variance comes from a
generalised variance function (GVF) fitted to the cells that have one (Wolter 2007, ch. 7):

    log ψ_d = a + b log n_d      (least squares; b is about −1 for means and proportions)

and the cell is marked ``variance_source = "gvf"``. Without sample sizes sae stops and lists the
cells. A cell without an estimate stays in the table as a cell with no data, estimated from the
model alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sae import transforms
from sae.errors import SaeInputError
from sae.spec import Spec


def direct_columns(table: pd.DataFrame, spec: Spec, source: str, rows_where) -> pd.DataFrame:
    """estimate, variance, variance_source and exposure (population or 1) for each row."""
    d = spec.data
    estimate = numeric(table, d.estimate, source, rows_where, allow_missing=True)
    spread = numeric(table, d.variance or d.se, source, rows_where, allow_missing=True)
    negative = spread < 0
    if negative.any():
        raise SaeInputError(
            f"{source}: column {d.variance or d.se!r} is negative at {rows_where(table, negative)}. "
            "Sampling variances and standard errors are 0 or more."
        )
    variance = spread if d.variance else spread**2
    size = numeric(table, d.sample_size, source, rows_where) if d.sample_size else None
    has_estimate = estimate.notna()
    check_domain(
        estimate, has_estimate, spec.model.transform, d.estimate, source, table, rows_where
    )
    unusable = has_estimate & ~(variance > 0)
    variance_source = pd.Series(np.where(unusable, "gvf", "direct"), index=table.index)
    if unusable.any() and spec.model.transform != "arcsine":
        if size is None:
            raise SaeInputError(
                f"{source}: column {d.variance or d.se!r} is zero or missing at "
                f"{rows_where(table, unusable)}, where there is an estimate. sae will not treat these "
                "as exact. Options: give [data] sample_size so a generalised variance function "
                'supplies them; use transform = "arcsine" with sample sizes; or drop those estimates.'
            )
        variance = variance.where(~unusable, gvf(variance, size, ~unusable & has_estimate))
    population = numeric(table, d.population, source, rows_where) if d.population else 1.0
    return pd.DataFrame(
        {"estimate": estimate, "variance": variance, "variance_source": variance_source,
         "sample_size": size if size is not None else np.nan, "exposure": population},
        index=table.index,
    )  # fmt: skip


def numeric(table, column, source, rows_where, allow_missing=False) -> pd.Series:
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() & (table[column].notna() | (not allow_missing))
    if bad.any():
        raise SaeInputError(
            f"{source}: column {column!r} has missing or non-numeric values at "
            f"{rows_where(table, bad)}. Give a number in every row"
            + (" (leave the estimate empty for a cell without data)." if allow_missing else ".")
        )
    return values.astype(float)


def check_domain(estimate, has_estimate, transform, column, source, table, rows_where) -> None:
    outside = has_estimate & transforms.outside_domain(transform, estimate.fillna(0.5).to_numpy())
    if outside.any():
        raise SaeInputError(
            f"{source}: transform = {transform!r} needs {transforms.DOMAIN[transform][2]}, but column "
            f"{column!r} is outside that at {rows_where(table, outside)}. For prevalences of 0 or 1 "
            'use transform = "arcsine" with sample sizes, or "none".'
        )


def gvf(variance: pd.Series, size: pd.Series, usable: pd.Series) -> pd.Series:
    """Variances predicted by log ψ = a + b log n, fitted on the usable cells."""
    if usable.sum() < 3:
        raise SaeInputError(
            "too few cells with a positive sampling variance (fewer than 3) to fit a generalised "
            "variance function; supply variances or drop the cells without them."
        )
    slope, intercept = np.polyfit(np.log(size[usable]), np.log(variance[usable]), 1)
    return pd.Series(np.exp(intercept + slope * np.log(size)), index=variance.index)
