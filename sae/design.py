"""Numeric arrays for the model: indices, the fixed-effect design, offsets and the prediction grid.

Numeric covariates are standardised (mean 0, sd 1) and dummy columns centred (mean 0), so the
sampler sees a well-conditioned problem with little correlation between the intercept and the
other coefficients; `center` and `scale` map coefficients back to the original units. Categorical
covariates and strata are dummy-coded against their first level (sorted). The prediction grid holds every
area × group × stratum (× period) combination, so every cell of the map, in every period, gets an
estimate, data or not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sae import transforms
from sae.cells import CellTable
from sae.errors import SaeInputError, listing
from sae.family import RowData
from sae.graph import AreaGraph
from sae.unknown_group import UnknownGroups, unknown_groups


@dataclass(frozen=True)
class Term:
    """One column of the fixed-effect design: a numeric covariate or stratum (`level` None), or the
    dummy of one level of a categorical one; standardised as (value − center) / scale.

    With `group`, the column is that value times the indicator of the group: a group × stratum
    interaction, so the stratum's effect in `group` differs from its effect in the baseline group
    (the group with the largest exposure) by this term's coefficient.

    The coding is saved with a fit, so a loaded fit means what it meant when it was fitted."""

    column: str
    level: str | None
    center: float
    scale: float
    group: str | None = None

    @property
    def label(self) -> str:
        name = self.column if self.level is None else f"{self.column}[{self.level}]"
        return name if self.group is None else f"{name}:group[{self.group}]"

    @property
    def numeric(self) -> bool:
        return self.level is None

    def values(self, frame: pd.DataFrame) -> np.ndarray:
        """The standardised column for the rows of `frame`."""
        return (self.raw(frame) - self.center) / self.scale

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        """The column before standardisation."""
        raw = frame[self.column]
        raw = (
            raw.to_numpy(float) if self.numeric else (raw.astype(str) == self.level).to_numpy(float)
        )
        if self.group is not None:
            raw = raw * (frame["group"].astype(str) == self.group).to_numpy(float)
        return raw


@dataclass(frozen=True, eq=False)
class Design:
    """Arrays for one fit.

    The likelihood's rows (`keys`: area, group and strata of each) exclude zero-exposure rows (they
    must have 0 events) and, for Fay–Herriot models, rows without a direct estimate; `rows` holds
    what the family needs of them (y, offset, trials, ψ on the model's scale). `area`, `group` and
    `X` index and describe the same rows; `grid` every area × group × stratum combination.
    """

    area: np.ndarray
    group: np.ndarray
    X: np.ndarray
    rows: RowData
    keys: pd.DataFrame
    coding: tuple[Term, ...]
    base_level: float
    groups: tuple[str, ...]
    baseline_group: int
    grid: Grid
    response_center: float = 0.0
    response_scale: float = 1.0
    unknown: UnknownGroups | None = None  # events of unknown group per area × stratum
    period: np.ndarray | None = None  # each row's period (0 the first); None without time
    periods: tuple = ()

    def original_scale(self, eta):
        """η on the data's own scale: Fay–Herriot models are fitted to standardised estimates
        (y − center) / scale, so that their priors do not depend on the units; counts: η itself."""
        if self.response_scale == 1.0 and self.response_center == 0.0:
            return eta
        return self.response_center + self.response_scale * eta

    def reported_coefficients(self, intercept_std, beta_std):
        """The intercept and coefficients on the original scales of the covariates and of the
        data (numpy or pytensor): β = scale_y β_std / scale_x, α = η(0) with x at 0."""
        beta = beta_std / self.scale
        intercept = intercept_std - (beta * self.center).sum(axis=-1)
        return self.original_scale(intercept), self.response_scale * beta

    def standardised_coefficients(self, intercept, beta):
        """The inverse of `reported_coefficients`: β_std and the intercept of the standardised
        design from the reported α and β."""
        per_x = beta / self.response_scale
        intercept_std = (intercept - self.response_center) / self.response_scale
        return intercept_std + (per_x * self.center).sum(axis=-1), per_x * self.scale

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(term.label for term in self.coding)

    @property
    def center(self) -> np.ndarray:
        return np.array([term.center for term in self.coding])

    @property
    def scale(self) -> np.ndarray:
        return np.array([term.scale for term in self.coding])

    @property
    def numeric_terms(self) -> np.ndarray:
        return np.array([term.numeric for term in self.coding], dtype=bool)


@dataclass(frozen=True, eq=False)
class Grid:
    """Every area × group × stratum combination, with its design row and exposure (0 if no data)
    and, for count models, its count's bounds (`count`, `count_upper`: equal unless censored).

    `aggregation` turns these stratum-level rates into rates of larger units.
    """

    area: np.ndarray
    group: np.ndarray
    X: np.ndarray
    rows: pd.DataFrame
    strata: tuple[str, ...]
    period: np.ndarray | None = None  # each row's period (0 the first); None without time
    periods: tuple = ()

    @property
    def cell(self) -> tuple[str, ...]:
        """The keys of a cell: area and group, and the period when the data have one."""
        return ("area", "group", *(("period",) if self.periods else ()))

    @property
    def blocks(self) -> tuple[str, ...]:
        """What, besides the area, a cell's rows differ by: the strata, then the period."""
        return (*self.strata, *(("period",) if self.periods else ()))

    def pooled(self, first: int, last: int, label: str) -> tuple[Grid, np.ndarray]:
        """The rows of the periods at positions `first` to `last` as one period called `label`
        (so a unit's rate combines its years by their exposure), and those rows' mask."""
        mask = (self.period >= first) & (self.period <= last)
        rows = self.rows[mask].assign(period=label, period_index=0).reset_index(drop=True)
        grid = Grid(self.area[mask], self.group[mask], self.X[mask], rows, self.strata,
                    np.zeros(int(mask.sum()), dtype=np.int64), (label,))  # fmt: skip
        return grid, mask

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
        weights = mix_shares(rows, within, ["group", *self.blocks], ["group", *self.strata])
        if age:
            weights = weights * rows[age].map(age_weights).to_numpy()
        matrix = sp.csr_array(
            (weights, (np.arange(len(rows)), index)), shape=(len(rows), len(units))
        )
        return units, matrix


def mix_shares(rows: pd.DataFrame, within: list[str], *classes: list[str]) -> np.ndarray:
    """Each row's exposure share within its `within` group; where it has none, the map-wide
    shares of its class, trying each list of `classes` in turn (the same period's mix, then every
    period's, so a period without any data still gets a mix)."""
    total = rows.groupby(within)["exposure"].transform("sum")
    shares = rows["exposure"] / total.where(total > 0)
    for keys in classes:
        class_total = rows.groupby(keys)["exposure"].transform("sum")
        within_total = class_total.groupby([rows[k] for k in within]).transform("sum")
        shares = shares.fillna(class_total / within_total.where(within_total > 0))
    return shares.fillna(0.0).to_numpy()


def build_design(
    cells: CellTable,
    graph: AreaGraph,
    areas: pd.DataFrame | None,
    area_id: str,
    transform: str | None = None,
    coding: tuple[Term, ...] | None = None,
) -> Design:
    """Arrays for the model. `transform` is set for Fay–Herriot models (direct estimates);
    `coding` (a saved fit's) replaces the coding derived from the data."""
    frame = cells.frame
    coding = fixed_effect_coding(frame, cells) if coding is None else coding
    group_codes = {g: i for i, g in enumerate(cells.groups)}
    used, rows, base_level = likelihood_rows(frame, cells.exposure, transform)
    center, scale = 0.0, 1.0
    if transform is not None:  # standardise direct estimates: priors in units of their spread
        center, scale = base_level, float(np.std(rows.response)) or 1.0
        rows = RowData((rows.response - center) / scale, rows.offset, rows.trials,
                       rows.variance / scale**2)  # fmt: skip
        base_level = 0.0
    keys = cells.keys
    return Design(
        area=frame["area"].map(graph.index).to_numpy()[used],
        group=frame["group"].map(group_codes).to_numpy()[used],
        X=coded(frame, coding)[used],
        rows=rows,
        keys=frame.loc[used, keys].reset_index(drop=True),
        coding=coding,
        base_level=base_level,
        groups=cells.groups,
        baseline_group=group_codes[largest_group(frame)],
        grid=build_grid(cells, graph, areas, area_id, group_codes, coding),
        response_center=center,
        response_scale=scale,
        unknown=unknown_groups(frame, used, tuple(cells.keys[2:])),
        period=frame["period_index"].to_numpy()[used] if cells.periods else None,
        periods=cells.periods,
    )


def likelihood_rows(frame: pd.DataFrame, exposure_kind: str, transform: str | None):
    """Which cells enter the likelihood, their family data, and the overall level the intercept
    is centred on (the crude log rate, logit proportion, or mean transformed estimate)."""
    exposure = frame["exposure"].to_numpy()
    if transform is not None:  # Fay–Herriot: direct estimates on the model's scale
        used = frame["estimate"].notna().to_numpy()
        response, variance = transforms.forward(
            transform, frame["estimate"].to_numpy()[used], frame["variance"].to_numpy()[used],
            frame["sample_size"].to_numpy()[used],
        )  # fmt: skip
        rows = RowData(response, np.zeros(used.sum()), np.zeros(0), variance)
        return used, rows, float(np.mean(response))
    used = exposure > 0
    response = frame["count"].to_numpy()[used]
    upper = frame["count_upper"].to_numpy()[used]
    censored = upper > response
    upper = upper if censored.any() else None
    # the intercept's centre only: a censored count counts as the middle of its range
    events = (response.sum() + (upper - response).sum() / 2) if censored.any() else response.sum()
    if exposure_kind == "trials":
        p = events / exposure[used].sum()
        rows = RowData(response, np.zeros(used.sum()), exposure[used].astype(np.int64), np.zeros(0),
                       upper)  # fmt: skip
        return used, rows, float(np.log(p / (1 - p)))
    rows = RowData(response, np.log(exposure[used]), np.zeros(0), np.zeros(0), upper)
    return used, rows, float(np.log(events / exposure[used].sum()))


def fixed_effect_coding(
    frame: pd.DataFrame, cells: CellTable, strata_by_group: tuple[str, ...] = (),
    linear_trend: str = "none",
) -> tuple[Term, ...]:  # fmt: skip
    """Numeric covariates and strata standardised; categorical ones dummy-coded against their first
    (sorted) level, each dummy centred. Each stratum in `strata_by_group` also gets, for every group
    but the baseline (largest exposure), its columns times that group's indicator (standardised
    the same way): group-specific stratum effects.

    `linear_trend` ("shared" or "by_group") adds the period's position as a covariate, and with
    "by_group" its interactions with the groups: second-order random walks are constrained
    orthogonal to a line (`sae.random_walk`), so the line itself is a fixed effect."""
    terms = main_effect_terms(frame, cells)
    if linear_trend != "none":
        position = frame["period_index"].to_numpy(float)
        terms.append(Term("period_index", None, float(position.mean()), float(position.std())))
    by_group = (*strata_by_group, *(["period_index"] if linear_trend == "by_group" else []))
    baseline = largest_group(frame)
    for term in [t for t in terms if t.column in by_group]:
        for group in (g for g in cells.groups if g != baseline):
            raw = dataclasses.replace(term, group=group, center=0.0, scale=1.0).raw(frame)
            scale = float(raw.std(ddof=0)) if term.numeric else 1.0
            terms.append(
                dataclasses.replace(term, group=group, center=float(raw.mean()), scale=scale)
            )
    return tuple(terms)


def largest_group(frame: pd.DataFrame) -> str:
    """The group with the largest exposure: its group effect is 0, and interactions are
    contrasts against it."""
    return frame.groupby("group")["exposure"].sum().idxmax()


def main_effect_terms(frame: pd.DataFrame, cells: CellTable) -> list[Term]:
    terms = []
    for name in (*cells.covariates, *cells.strata):
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values):
            if values.nunique() == 1:
                raise SaeInputError(
                    f"{cells.source}: covariate {name!r} takes one value only ({values.iloc[0]}); "
                    "it cannot be estimated next to the intercept. Drop it from the spec."
                )
            terms.append(Term(name, None, float(values.mean()), float(values.std(ddof=0))))
            continue
        for level in sorted(values.unique())[1:]:
            dummy = (values.to_numpy() == level).astype(float)
            terms.append(Term(name, str(level), float(dummy.mean()), 1.0))
    return terms


def coded(frame: pd.DataFrame, coding: tuple[Term, ...]) -> np.ndarray:
    """The standardised design matrix of `frame`'s rows under `coding`."""
    if not coding:
        return np.zeros((len(frame), 0))
    return np.column_stack([term.values(frame) for term in coding])


def build_grid(cells, graph, areas, area_id, group_codes, coding: tuple[Term, ...]) -> Grid:
    frame = cells.frame
    strata = list(cells.strata)
    combos = frame[strata].drop_duplicates() if strata else pd.DataFrame(index=[0])
    full = (
        pd.MultiIndex.from_product([graph.ids, cells.groups], names=["area", "group"])
        .to_frame(index=False)
        .merge(combos, how="cross")
    )
    if cells.periods:  # every period, with or without data
        periods = pd.DataFrame({"period": list(cells.periods),
                                "period_index": np.arange(len(cells.periods))})  # fmt: skip
        full = full.merge(periods, how="cross")
    keys = cells.keys
    counts = [c for c in ("count", "count_upper", "unknown") if c in frame]
    full = full.merge(frame[[*keys, "exposure", *counts, *cells.covariates]], on=keys, how="left")
    full["exposure"] = full["exposure"].fillna(0.0)
    full[counts] = full[counts].fillna(0).astype(np.int64)
    for covariate in cells.covariates:
        full[covariate] = fill_covariate(frame, full, covariate, areas, area_id, cells.source)
    positions = ["period_index"] if cells.periods else []
    return Grid(
        area=full["area"].map(graph.index).to_numpy(),
        group=full["group"].map(group_codes).to_numpy(),
        X=coded(full, coding),
        rows=full[[*keys, *positions, "exposure", *counts]],
        strata=tuple(strata),
        period=full["period_index"].to_numpy() if cells.periods else None,
        periods=cells.periods,
    )


def fill_covariate(frame, full, covariate, areas, area_id, source) -> pd.Series:
    """Covariate values for grid rows without data.

    An area-level covariate (one value per area) is taken from the area's other rows, or from the
    polygons' column of the same name; one that varies by period, or by group, from the rows of
    the same area and period, or area and group (and period), when they agree. Anything else is an
    error: sae does not invent covariate values.
    """
    timed = "period" in full
    levels = [["area"], *([["area", "period"]] if timed else []), ["area", "group"],
              *([["area", "group", "period"]] if timed else [])]  # fmt: skip
    for keys in levels:
        by_keys = frame.groupby(keys)[covariate]
        agree = by_keys.nunique() <= 1
        if agree.all() or keys == levels[-1]:
            break
    lookup = by_keys.first()[agree]
    if keys == ["area"] and areas is not None and covariate in areas:
        lookup = lookup.combine_first(areas.set_index(area_id)[covariate])
    index = pd.MultiIndex.from_frame(full[keys]) if len(keys) > 1 else full[keys[0]]
    values = full[covariate].fillna(pd.Series(lookup.reindex(index).to_numpy(), index=full.index))
    missing = values.isna()
    if missing.any():
        keys = ["area", "group", *(["period"] if timed else [])]
        where = full.loc[missing, keys].drop_duplicates()
        raise SaeInputError(
            f"{source}: covariate {covariate!r} is unknown for cells without data "
            f"{listing(['/'.join(map(str, k)) for k in where.itertuples(index=False)])}, so they cannot be "
            f"estimated. Add a {covariate!r} column to the areas file, or rows with 0 counts."
        )
    return values
