"""Numeric arrays for the model: indices, the fixed-effect design, offsets and the prediction grid.

Numeric covariates are standardised (mean 0, sd 1) and dummy columns centred (mean 0), so the
sampler sees a well-conditioned problem with little correlation between the intercept and the
other coefficients; `center` and `scale` map coefficients back to the original units. Categorical
covariates and strata are dummy-coded against their first level (sorted). The prediction grid holds every
area × group × stratum combination, so every cell of the map gets an estimate, data or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sae import transforms
from sae.cells import CellTable
from sae.errors import SaeInputError, listing
from sae.graph import AreaGraph


@dataclass(frozen=True, eq=False)
class Design:
    """Arrays for one fit. Likelihood rows exclude zero-exposure rows (they must have 0 events)
    and, for Fay–Herriot models, rows without a direct estimate; `variance` is ψ on the model's
    scale (Fay–Herriot only)."""

    area: np.ndarray
    group: np.ndarray
    X: np.ndarray
    offset: np.ndarray
    response: np.ndarray
    trials: np.ndarray
    variance: np.ndarray
    terms: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    base_level: float
    groups: tuple[str, ...]
    baseline_group: int
    grid: Grid


@dataclass(frozen=True, eq=False)
class Grid:
    """Every area × group × stratum combination, with its design row and exposure (0 if no data).

    `aggregation` turns these stratum-level rates into rates of larger units.
    """

    area: np.ndarray
    group: np.ndarray
    X: np.ndarray
    rows: pd.DataFrame
    strata: tuple[str, ...]

    def aggregation(
        self, unit: tuple[str, ...], age: str | None = None, age_weights: pd.Series | None = None
    ) -> tuple[pd.DataFrame, sp.csr_array]:
        """The units (a frame of their keys) and the (rows × units) weight matrix.

        A unit's rate is Σ_r s_r θ_r over its rows, where s_r is the row's exposure share in the
        unit; a unit without exposure uses the map-wide mix of the same group and strata. With
        `age`, shares are taken within each age band and multiplied by the band's standard weight:
        direct standardisation.
        """
        rows = self.rows
        units = rows[list(unit)].drop_duplicates().reset_index(drop=True)
        index = pd.MultiIndex.from_frame(units).get_indexer(
            pd.MultiIndex.from_frame(rows[list(unit)])
        )
        within = [*unit, age] if age else list(unit)
        weights = mix_shares(rows, within, ["group", *self.strata])
        if age:
            weights = weights * rows[age].map(age_weights).to_numpy()
        matrix = sp.csr_array(
            (weights, (np.arange(len(rows)), index)), shape=(len(rows), len(units))
        )
        return units, matrix


def mix_shares(rows: pd.DataFrame, within: list[str], classes: list[str]) -> np.ndarray:
    """Each row's exposure share within its `within` group; map-wide class shares where it has none."""
    total = rows.groupby(within)["exposure"].transform("sum")
    own = rows["exposure"] / total.where(total > 0)
    class_total = rows.groupby(classes)["exposure"].transform("sum")
    fallback = class_total / class_total.groupby([rows[k] for k in within]).transform("sum")
    return own.fillna(fallback).fillna(0.0).to_numpy()


def build_design(
    cells: CellTable,
    graph: AreaGraph,
    areas: pd.DataFrame | None,
    area_id: str,
    transform: str | None = None,
) -> Design:
    """Arrays for the model. `transform` is set for Fay–Herriot models (direct estimates)."""
    frame = cells.frame
    columns, terms, center, scale = fixed_effect_columns(frame, cells)
    group_codes = {g: i for i, g in enumerate(cells.groups)}
    exposure_by_group = frame.groupby("group")["exposure"].sum()
    exposure = frame["exposure"].to_numpy()
    variance = np.zeros(0)
    if transform is not None:  # Fay–Herriot: direct estimates on the model's scale
        used = frame["estimate"].notna().to_numpy()
        response, variance = transforms.forward(
            transform, frame["estimate"].to_numpy()[used], frame["variance"].to_numpy()[used],
            frame["sample_size"].to_numpy()[used],
        )  # fmt: skip
        base_level = float(np.mean(response))
        offset = np.zeros(used.sum())
    elif cells.exposure == "trials":
        used = exposure > 0
        response = frame["count"].to_numpy()[used]
        p = response.sum() / exposure[used].sum()
        base_level = float(np.log(p / (1 - p)))
        offset = np.zeros(used.sum())
    else:
        used = exposure > 0
        response = frame["count"].to_numpy()[used]
        base_level = float(np.log(response.sum() / exposure[used].sum()))
        offset = np.log(exposure[used])
    X = standardised(columns, center, scale)
    return Design(
        area=frame["area"].map(graph.index).to_numpy()[used],
        group=frame["group"].map(group_codes).to_numpy()[used],
        X=X[used],
        offset=offset,
        response=response,
        trials=exposure[used].astype(np.int64) if cells.exposure == "trials" else np.zeros(0),
        variance=variance,
        terms=terms,
        center=center,
        scale=scale,
        base_level=base_level,
        groups=cells.groups,
        baseline_group=group_codes[exposure_by_group.idxmax()],
        grid=build_grid(cells, graph, areas, area_id, group_codes, (terms, center, scale)),
    )


def fixed_effect_columns(frame: pd.DataFrame, cells: CellTable):
    """Raw design columns, their names, and how each is centred and scaled."""
    blocks, terms, center, scale = [], [], [], []
    for name in (*cells.covariates, *cells.strata):
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values):
            sd = values.std(ddof=0)
            if values.nunique() == 1:
                raise SaeInputError(
                    f"{cells.source}: covariate {name!r} takes one value only ({values.iloc[0]}); "
                    "it cannot be estimated next to the intercept. Drop it from the spec."
                )
            blocks.append(values.to_numpy()[:, None])
            terms.append(name)
            center.append(values.mean())
            scale.append(sd)
            continue
        levels = sorted(values.unique())
        for level in levels[1:]:
            dummy = (values.to_numpy() == level).astype(float)
            blocks.append(dummy[:, None])
            terms.append(f"{name}[{level}]")
            center.append(dummy.mean())
            scale.append(1.0)
    columns = np.hstack(blocks) if blocks else np.zeros((len(frame), 0))
    return columns, tuple(terms), np.array(center), np.array(scale)


def is_numeric_term(term: str) -> bool:
    """Numeric covariates keep their column name; dummy terms are named ``column[level]``."""
    return not term.endswith("]")


def standardised(columns: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (columns - center) / scale


def build_grid(cells, graph, areas, area_id, group_codes, coding) -> Grid:
    frame = cells.frame
    strata = list(cells.strata)
    combos = frame[strata].drop_duplicates() if strata else pd.DataFrame(index=[0])
    full = (
        pd.MultiIndex.from_product([graph.ids, cells.groups], names=["area", "group"])
        .to_frame(index=False)
        .merge(combos, how="cross")
    )
    keys = ["area", "group", *strata]
    full = full.merge(frame[[*keys, "exposure", *cells.covariates]], on=keys, how="left")
    full["exposure"] = full["exposure"].fillna(0.0)
    for covariate in cells.covariates:
        full[covariate] = fill_covariate(frame, full, covariate, areas, area_id, cells.source)
    return Grid(
        area=full["area"].map(graph.index).to_numpy(),
        group=full["group"].map(group_codes).to_numpy(),
        X=grid_design(full, coding),
        rows=full[[*keys, "exposure"]],
        strata=tuple(strata),
    )


def grid_design(full: pd.DataFrame, coding) -> np.ndarray:
    """The grid's design matrix, coded exactly as the fitted data were (same levels, scales)."""
    terms, center, scale = coding
    columns = []
    for term in terms:
        if is_numeric_term(term):
            columns.append(full[term].to_numpy(float))
        else:
            name, _, level = term[:-1].rpartition("[")
            columns.append((full[name].astype(str) == level).to_numpy(float))
    raw = np.column_stack(columns) if columns else np.zeros((len(full), 0))
    return standardised(raw, center, scale)


def fill_covariate(frame, full, covariate, areas, area_id, source) -> pd.Series:
    """Covariate values for grid rows without data.

    An area-level covariate (one value per area) is taken from the area's other rows, or from the
    polygons' column of the same name; a cell-level one from the same area × group's rows, when
    they agree. Anything else is an error: sae does not invent covariate values.
    """
    values = full[covariate]
    if frame.groupby("area")[covariate].nunique().max() <= 1:
        lookup = frame.groupby("area")[covariate].first()
        if areas is not None and covariate in areas:
            lookup = lookup.combine_first(areas.set_index(area_id)[covariate])
        values = values.fillna(full["area"].map(lookup))
    else:
        by_cell = frame.groupby(["area", "group"])[covariate]
        lookup = by_cell.first()[by_cell.nunique() == 1]
        cell = pd.MultiIndex.from_frame(full[["area", "group"]])
        values = values.fillna(pd.Series(lookup.reindex(cell).to_numpy(), index=full.index))
    missing = values.isna()
    if missing.any():
        where = full.loc[missing, ["area", "group"]].drop_duplicates()
        raise SaeInputError(
            f"{source}: covariate {covariate!r} is unknown for cells without data "
            f"{listing([f'{a}/{g}' for a, g in where.itertuples(index=False)])}, so they cannot be "
            f"estimated. Add a {covariate!r} column to the areas file, or rows with 0 counts."
        )
    return values
