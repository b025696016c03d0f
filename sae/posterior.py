"""Posterior arithmetic: from the draws every method returns to labelled draws of rates.

Every inference method returns an InferenceData whose posterior holds, with dims (chain, draw, …):

    intercept, beta (term)       on the data's original scale (the standardised design's
                                 coefficients follow from them: `Design.standardised_coefficients`)
    group_effect (compared_group)  α_g of each group but the baseline (whose α_g is 0, attribute
                                 `baseline_group`), so no series is constant
    area_effect (area)           b_i (this and the other effects with an area dimension, in
                                 `AREA_EFFECTS`, are float32, `RATE_DTYPE`)
    group_area_effect (group, area)   c_ig, when the model has group effects
    time_effect (period), group_time_effect (group, period), area_time_effect (area, period):
                                 f_t, f_gt and δ_it of a space–time model, those it has
    area_sigma, area_rho, group_area_sigma (group), group_area_rho (group), time_sigma,
    group_time_sigma (group), area_time_sigma: hyperparameters

Nothing downstream knows which method made them. Rates are per `spec.per`; a unit's rate combines
its strata with exposure shares (or standard-population weights, when age-adjusted).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from sae.design import Design, Grid
from sae.family import Family
from sae.predictor import TIME_EFFECTS, linear_predictor

CELL = ("area", "group")  # a cell without time; `Grid.cell` adds the period when there is one
SAMPLES_PER_PRODUCT = 500  # draws per block of a sparse weighted sum or of the rates
# rate draws, and the draws of effects with an area dimension, in float32: 7 significant digits,
# far finer than their Monte Carlo error (summaries are accumulated in float64), at half the memory
# of the largest arrays sae holds; θ and the fixed effects stay float64
RATE_DTYPE = np.float32
AREA_EFFECTS = ("area_effect", "group_area_effect", "area_time_effect")


def effects(posterior: xr.Dataset, chain: int, design: Design) -> dict[str, np.ndarray]:
    """One chain's draws of the linear predictor's parts, as `linear_predictor` takes them (on
    the standardised design)."""
    one = posterior.isel(chain=chain)
    intercept, beta = design.standardised_coefficients(
        one["intercept"].to_numpy(), one["beta"].to_numpy()
    )
    params = {"intercept": intercept, "beta": beta, "group_effect": full_group_effect(one, design),
              "area_effect": one["area_effect"].to_numpy()}  # fmt: skip
    for name in ("group_area_effect", *TIME_EFFECTS):
        if name in posterior:
            params[name] = posterior[name].isel(chain=chain).to_numpy()
    return params


def full_group_effect(posterior: xr.Dataset, design: Design) -> np.ndarray:
    """α_g for every group of the design (0 for the baseline): array (…, group)."""
    compared = posterior["group_effect"]
    values = np.zeros((*compared.shape[:-1], len(design.groups)))
    others = [g for k, g in enumerate(design.groups) if k != design.baseline_group]
    values[..., [design.groups.index(g) for g in others]] = compared.sel(
        compared_group=others
    ).to_numpy()
    return values


def without_baseline(group_effect: np.ndarray, design: Design) -> tuple[tuple, np.ndarray, list]:
    """(dims, values, coordinate) of the `group_effect` variable: every group's α_g, array
    (chain, draw, group), less the baseline's constant 0."""
    keep = [k for k in range(len(design.groups)) if k != design.baseline_group]
    return (("chain", "draw", "compared_group"), group_effect[..., keep],
            [design.groups[k] for k in keep])  # fmt: skip


def stratum_rates(posterior: xr.Dataset, design: Design, family, per: float) -> np.ndarray:
    """Draws of every grid row's rate (per `per`): array (chain, draw, grid row) of
    `RATE_DTYPE`, computed `SAMPLES_PER_PRODUCT` draws at a time so the linear predictor's
    temporaries stay small."""
    grid = design.grid
    rates = np.empty(
        (posterior.sizes["chain"], posterior.sizes["draw"], len(grid.rows)), dtype=RATE_DTYPE
    )
    for chain in range(posterior.sizes["chain"]):
        params = effects(posterior, chain, design)
        for start in range(0, posterior.sizes["draw"], SAMPLES_PER_PRODUCT):
            block = {name: value[start : start + SAMPLES_PER_PRODUCT]
                     for name, value in params.items()}  # fmt: skip
            eta = linear_predictor(block, grid.area, grid.group, grid.X, grid.period)
            rates[chain, start : start + SAMPLES_PER_PRODUCT] = (
                family.rate(design.original_scale(eta)) * per
            )
    return rates


def reordered_by_area(rates: np.ndarray, order: np.ndarray, row_area: np.ndarray) -> np.ndarray:
    """One chain of draws (1, draw, row) with each row's draws taken in its area's `order`
    (draw × area): the per-area resampling of a locally corrected Laplace fit."""
    return np.take_along_axis(rates[0], order[:, row_area], axis=0)[None]


def data_row_predictor(posterior: xr.Dataset, design: Design) -> np.ndarray:
    """Draws of η for the likelihood's rows (without the offset, which the family adds): array
    (chain, draw, row), the rows keyed by `design.keys`."""
    return np.stack([
        linear_predictor(effects(posterior, chain, design), design.area, design.group, design.X,
                         design.period)
        for chain in range(posterior.sizes["chain"])
    ])  # fmt: skip


def unit_rates(
    stratum: np.ndarray, grid: Grid, unit: tuple[str, ...], age: str | None,
    age_weights: pd.Series | None,
) -> xr.DataArray:  # fmt: skip
    """Draws of each unit's rate, dims (chain, draw, unit) with the unit's keys as coordinates.

    `unit` is ("area", "group") for cells, ("area",) for a place's all-groups rate, ("group",)
    for map-wide group rates; with `age`, rates are standardised by age (`Grid.aggregation`).
    """
    units, matrix = grid.aggregation(unit, age, age_weights)
    identity = one_row_per_unit(matrix) and bool((matrix.data == 1.0).all())
    draws = stratum if identity else weighted_sum(stratum, matrix)  # the same draws: no copy
    coords = {key: ("unit", units[key].to_numpy()) for key in unit}
    return xr.DataArray(draws, dims=("chain", "draw", "unit"), coords=coords, name="rate")


def data_only_variance(
    stratum_mean: np.ndarray, grid: Grid, unit: tuple[str, ...], age: str | None,
    age_weights: pd.Series | None, family: Family, per: float,
) -> np.ndarray:  # fmt: skip
    """Var_data of each unit's rate: the variance its own data alone would give, by the delta
    method at the posterior mean rates θ̂_r (per `per`) of the unit's strata r with weights m_r
    (`Family.direct_variance`):

        Poisson:   Σ_r m_r² θ̂_r per / E_r          (θ̂² / expected events, per stratum)
        binomial:  Σ_r m_r² per² p̂_r (1 − p̂_r) / n_r

    A stratum without exposure adds an infinite variance (no data) unless its weight is 0; a
    censored one the variance divided by the share of a count's information its range keeps
    (`Family.information_share`).
    """
    _, matrix = grid.aggregation(unit, age, age_weights)
    exposure = grid.rows["exposure"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        row_variance = family.direct_variance(stratum_mean, exposure, per)
        if (
            "count_upper" in grid.rows
        ):  # a censored count carries only part of a count's information
            lower, upper = grid.rows["count"].to_numpy(), grid.rows["count_upper"].to_numpy()
            row_variance /= family.information_share(lower, upper, stratum_mean, exposure, per)
    row_variance = np.where(exposure > 0, row_variance, np.inf)
    squared = matrix.copy()
    squared.data = squared.data**2
    squared.eliminate_zeros()  # a stored zero weight times an infinite variance would be nan
    return squared.T @ row_variance


def labelled(rates: xr.DataArray) -> xr.DataArray:
    """(chain, draw, unit) with key coordinates → (chain, draw, *keys), e.g. (…, area, group).
    Units that are every combination of the keys, in order, are reshaped (no copy of the draws);
    others are unstacked, with NaN for missing combinations."""
    keys = [name for name, coord in rates.coords.items() if coord.dims == ("unit",)]
    if len(keys) == 1:
        return rates.swap_dims(unit=keys[0])
    levels = complete_product(rates, keys)
    if levels is None:
        return rates.set_index(unit=keys).unstack("unit")
    shape = (*rates.shape[:-1], *(len(level) for level in levels))
    return xr.DataArray(rates.data.reshape(shape), dims=(*rates.dims[:-1], *keys),
                        coords={**{d: rates[d] for d in rates.dims[:-1] if d in rates.coords},
                                **dict(zip(keys, levels, strict=True))}, name=rates.name)  # fmt: skip


def complete_product(rates: xr.DataArray, keys: list[str]) -> list[np.ndarray] | None:
    """The levels of each key when the units run through every combination of them in C order
    (the first key slowest), else None."""
    values = [rates[key].to_numpy() for key in keys]
    levels = [pd.unique(v) for v in values]
    sizes = [len(level) for level in levels]
    if int(np.prod(sizes)) != len(values[0]):
        return None
    for k, (value, level) in enumerate(zip(values, levels, strict=True)):
        pattern = np.tile(np.repeat(level, int(np.prod(sizes[k + 1 :]))), int(np.prod(sizes[:k])))
        if not np.array_equal(value, pattern):
            return None
    return levels


def excess_events(stratum: np.ndarray, grid: Grid, per: float, reference) -> xr.DataArray:
    """Expected excess events per cell against `reference` (a group, or None for the place's
    all-groups rate): Σ_k exposure_igk (θ_igk − θ_irk) / per over the cell's own strata (and in
    its own period), so the comparison is made within strata (no age-mix confounding). Dims
    (chain, draw, unit)."""
    keys = ["area", *grid.blocks]
    if reference is None:
        units, matrix = grid.aggregation(tuple(keys))
        ref_rates = weighted_sum(stratum, matrix)
    else:
        units = grid.rows[grid.rows["group"] == reference][keys]
        ref_rates = stratum[:, :, units.index.to_numpy()]
        units = units.reset_index(drop=True)
    lookup = pd.MultiIndex.from_frame(units[keys]).get_indexer(
        pd.MultiIndex.from_frame(grid.rows[keys])
    )
    difference = ref_rates[:, :, lookup]  # then, in place, (θ − θ_ref) / per: one array, not three
    np.subtract(stratum, difference, out=difference)
    difference /= per
    return events_per_cell(difference, grid, "excess")


def expected_events(stratum: np.ndarray, grid: Grid, per: float) -> xr.DataArray:
    """Draws of each cell's expected events Σ_k exposure_igk θ_igk / per, dims (chain, draw,
    unit)."""
    return events_per_cell(stratum / per, grid, "events")


def events_per_cell(per_person: np.ndarray, grid: Grid, name: str) -> xr.DataArray:
    """Σ over a cell's rows of exposure × a per-person quantity (chain, draw, grid row; a fresh
    array, which this may overwrite)."""
    cell = list(grid.cell)
    cells, _ = grid.aggregation(grid.cell)
    index = pd.MultiIndex.from_frame(cells).get_indexer(pd.MultiIndex.from_frame(grid.rows[cell]))
    to_cell = sp.csr_array(
        (grid.rows["exposure"].to_numpy(), (np.arange(len(grid.rows)), index)),
        shape=(len(grid.rows), len(cells)),
    )
    coords = {key: ("unit", cells[key].to_numpy()) for key in cell}
    if one_row_per_unit(to_cell):  # in place: `per_person` is always a fresh array here
        events = np.multiply(per_person, to_cell.data, out=per_person)
    else:
        events = weighted_sum(per_person, to_cell)
    return xr.DataArray(events, dims=("chain", "draw", "unit"), coords=coords, name=name)


def one_row_per_unit(matrix: sp.csr_array) -> bool:
    """Whether a (row × unit) weight matrix maps each row r to unit r alone (cells without
    strata), so that a weighted sum is each row's draws times its weight."""
    n = matrix.shape[0]
    return (matrix.shape == (n, n) and matrix.nnz == n
            and bool((np.diff(matrix.indptr) == 1).all())
            and bool((matrix.indices == np.arange(n)).all()))  # fmt: skip


def weighted_sum(draws: np.ndarray, matrix: sp.csr_array) -> np.ndarray:
    """(chain, draw, row) draws times a (row × unit) weight matrix → (chain, draw, unit). With one
    row per unit this is a product by each row's weight; otherwise a sparse product over blocks of
    `SAMPLES_PER_PRODUCT` draws, so its transposed copies stay small (each draw's sum is the same)."""
    if one_row_per_unit(matrix):
        return draws * matrix.data
    chains, samples, rows = draws.shape
    flat = draws.reshape(chains * samples, rows)
    out = np.empty((chains * samples, matrix.shape[1]), dtype=np.result_type(draws, matrix.dtype))
    for start in range(0, len(flat), SAMPLES_PER_PRODUCT):
        out[start : start + SAMPLES_PER_PRODUCT] = (
            flat[start : start + SAMPLES_PER_PRODUCT] @ matrix
        )
    return out.reshape(chains, samples, -1)


def flatten(draws) -> np.ndarray:
    """(chain, draw, …) → (sample, …)."""
    values = np.asarray(draws)
    return values.reshape(-1, *values.shape[2:])
