"""The `Fit`: posterior draws with the spec and data that produced them, and the tables from them.

fit = sae.fit("models/pennsylvania_lung_race.toml")
fit.estimates()      # one row per area × group: estimate, interval, RSE, flag, flag_reason
fit.gaps()           # one row per area × group against the reference group
fit.save("out/pennsylvania")
fit = sae.load("out/pennsylvania")
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from sae import inequality, posterior, tables, trends
from sae.design import Design, build_design, fixed_effect_coding
from sae.diagnostics import Diagnostics, warn_if_untrustworthy
from sae.errors import SaeInputError
from sae.gaps import ALL_GROUPS, quantiles
from sae.inference import infer
from sae.inputs import Inputs, load_inputs
from sae.spec import Spec
from sae.spec_file import load_spec
from sae.unknown_group import allocated_events

RATE_BASIS = {False: "crude mix", True: "age-adjusted"}


@dataclass(eq=False)
class Fit:
    """What was learned: draws (ArviZ InferenceData, see `sae.posterior`) with the spec, inputs,
    design and diagnostics behind them. Tables derived from the draws are computed once."""

    spec: Spec
    inputs: Inputs
    design: Design
    idata: az.InferenceData
    diagnostics: Diagnostics
    seconds: dict = field(default_factory=dict)
    directory: Path | None = None  # where it was saved to or loaded from
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def __repr__(self) -> str:
        graph = self.inputs.graph
        return (f"<sae.Fit {self.spec.title!r}: {self.spec.model.family}, {graph.n_areas} areas × "
                f"{len(self.design.groups)} group(s); {self.diagnostics.summary_line()}>")  # fmt: skip

    def _repr_html_(self) -> str:
        """Jupyter's view: model, data, quality of the draws, flag counts, and the folder."""
        from sae.summary import fit_card

        return fit_card(self)

    def _cached(self, key: tuple, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def reference_group(self) -> str:
        """The spec's reference group, else the group with the largest exposure (settled, and
        checked, when the inputs were loaded)."""
        return self.inputs.reference_group

    @property
    def _adjusted(self) -> bool:
        return self.spec.output.age_stratum is not None

    @property
    def cell(self) -> tuple[str, ...]:
        """The keys of a cell: ("area", "group"), and "period" for a space–time fit."""
        return self.design.grid.cell

    @property
    def periods(self) -> tuple:
        """The periods in order (empty without time)."""
        return self.design.periods

    def _with_period(self, *keys: str) -> tuple[str, ...]:
        return (*keys, *(("period",) if self.periods else ()))

    def _stratum_rates(self, local: bool = True) -> np.ndarray:
        """Draws of every grid row's rate (chain, draw, row). A locally corrected Laplace fit
        resamples each area's draws by its own weights (`sae.laplace.Correction`): numbers of an
        area, or of its groups, use those (`local`); map-wide ones the draws as they are."""
        rates = self._cached(("stratum",), lambda: posterior.stratum_rates(
            self.idata.posterior, self.design, self.spec.family, self.spec.per))  # fmt: skip
        if not local or self.diagnostics.correction != "local":
            return rates
        order = self.idata["laplace_check"]["draw_index"].to_numpy()
        return self._cached(("stratum local",), lambda: posterior.reordered_by_area(
            rates, order, self.design.grid.area))  # fmt: skip

    def rate_draws(
        self, unit: tuple[str, ...] | None = None, adjusted: bool = False
    ) -> xr.DataArray:
        """Posterior draws of each unit's rate, dims (chain, draw, unit), labelled by the unit keys.

        `unit` is ("area", "group") for cells (the default, with "period" in a space–time fit),
        ("area",) for a place's all-groups rate, ("group",) for map-wide group rates, each with
        "period" to keep periods apart. Strata are combined with the unit's own exposure mix (so
        rates are comparable with crude rates) or, with `adjusted`, standardised by age.
        """
        unit = self.cell if unit is None else unit
        age = self.spec.output.age_stratum if adjusted else None
        return self._cached(("rates", unit, adjusted), lambda: posterior.unit_rates(
            self._stratum_rates(local="area" in unit), self.design.grid, unit, age,
            self.inputs.age_weights))  # fmt: skip

    def rates(self, adjusted: bool | None = None) -> xr.DataArray:
        """Labelled draws of every cell's rate, dims (chain, draw, area, group[, period]), for
        computing quantities of your own; age-adjusted by default when the data have an age
        stratum."""
        adjusted = self._adjusted if adjusted is None else adjusted
        return labelled_cells(self.rate_draws(self.cell, adjusted), self.inputs, self.design)

    def unit_table(self, unit: tuple[str, ...], adjusted: bool = False) -> pd.DataFrame:
        """Observed, exposure, crude rate, posterior summaries and flags for each unit (a copy)."""
        return self._cached(
            ("table", unit, adjusted), lambda: self._unit_table(unit, adjusted)
        ).copy()

    def _unit_table(self, unit: tuple[str, ...], adjusted: bool) -> pd.DataFrame:
        draws = self.rate_draws(unit, adjusted)
        return self._summary_table(draws, self.design.grid, None, self.inputs, unit, adjusted)

    def _summary_table(self, draws: xr.DataArray, grid, rows: np.ndarray | None, inputs: Inputs,
                       unit: tuple[str, ...], adjusted: bool) -> pd.DataFrame:  # fmt: skip
        """The table of `draws` over `grid` (the fit's, or its `rows` pooled into one period)."""
        pareto_k = data_variance = None
        if self.diagnostics.correction == "local" and "area" in unit:
            pareto_k = self.idata["laplace_check"]["pareto_k"].sel(area=draws["area"]).to_numpy()
        gaussian = self.spec.model.family == "gaussian"
        if not gaussian:
            age = self.spec.output.age_stratum if adjusted else None
            mean = self._stratum_rates(local=False).mean(axis=(0, 1))
            data_variance = posterior.data_only_variance(
                mean if rows is None else mean[rows], grid, unit, age, self.inputs.age_weights,
                self.spec.family, self.spec.per,
            )  # fmt: skip
        allocated = self._allocated(draws, unit) if rows is None else None
        return tables.unit_table(draws, inputs, gaussian, self.spec.per,
                                 self.spec.output.interval, self.spec.flags,
                                 self.diagnostics.divergences, pareto_k, data_variance,
                                 self.spec.proportion_scale, allocated)  # fmt: skip

    def _allocated(self, draws: xr.DataArray, unit: tuple[str, ...]) -> pd.DataFrame | None:
        """Each unit's share of the events without a recorded group: posterior mean and
        interval (`sae.unknown_group`)."""
        grid = self.design.grid
        if self.design.unknown is None:
            return None
        odds = self.spec.model.unknown_group_odds
        weight = 1.0 if odds is None else np.where(grid.rows["group"] == odds.group, odds.odds, 1.0)
        rows = allocated_events(self._stratum_rates(local=False), grid.rows, grid.blocks,
                                self.spec.per, weight)  # fmt: skip
        keys = pd.DataFrame({k: draws[k].to_numpy() for k in unit})
        members = pd.MultiIndex.from_frame(keys).get_indexer(
            pd.MultiIndex.from_frame(grid.rows[list(unit)])
        )
        membership = sp.csr_array((np.ones(len(members)), (np.arange(len(members)), members)),
                                  shape=(len(members), len(keys)))  # fmt: skip
        per_unit = posterior.flatten(posterior.weighted_sum(rows, membership))
        tail = (1.0 - self.spec.output.interval) / 2.0
        lower, upper = np.quantile(per_unit, [tail, 1.0 - tail], axis=0)
        return pd.DataFrame(
            {
                "unknown_allocated": per_unit.mean(axis=0, dtype=float),
                "unknown_allocated_lower": lower,
                "unknown_allocated_upper": upper,
            }
        )

    def estimates(self) -> pd.DataFrame:
        """One row per area × group, every row with its interval and reliability flag.

        With an age stratum ([output] age_stratum) the age-adjusted rate follows in `adj_*` columns.
        """
        adjusted = self.unit_table(self.cell, adjusted=True) if self._adjusted else None
        return self._cached(("estimates",), lambda: tables.estimates_table(
            self.unit_table(self.cell), adjusted, self.spec.exposure,
            self.spec.model.family == "gaussian", self.inputs)).copy()  # fmt: skip

    def gaps(self, reference: str | None = None) -> pd.DataFrame:
        """The gap between each group and a reference in every place.

        Parameters
        ----------
        reference : str, optional
            A group, or ``"all groups"`` (the place's all-groups rate); default the spec's
            reference group (else the group with the largest exposure).

        Returns
        -------
        DataFrame
            One row per area × group: the rate ratio (posterior median and interval), the rate
            difference, P(higher), excess events, `flag` and `flag_reason`. Age-adjusted rates are
            used whenever the data have an age stratum (`rate_basis`).
        """
        reference = self._checked_reference(reference)
        return self._cached(("gaps", reference), lambda: self._gaps(reference)).copy()

    def _checked_reference(self, reference: str | None, places: bool = True) -> str:
        """The reference (default the fit's): a group or, with `places`, "all groups"."""
        reference = reference or self.reference_group
        allowed = (*self.design.groups, *((ALL_GROUPS,) if places else ()))
        if reference not in allowed:
            also = f" nor {ALL_GROUPS!r}" if places else ""
            raise SaeInputError(
                f"reference {reference!r} is not a group ({list(self.design.groups)}){also}."
            )
        return reference

    def _compared(self, reference: str, adjusted: bool):
        """Every cell's rates, the reference's rates (a group's, or each place's all-groups
        rate), the groups compared with it, and the flags of both (indexed by their keys). The
        cells are not narrowed to the compared groups here: that would copy every draw."""
        cells, flags = self.rates(adjusted), self._cell_flags(adjusted)
        if reference == ALL_GROUPS:
            place = self._with_period("area")
            ref_flags = self.unit_table(place, adjusted).set_index(list(place))["flag"]
            return cells, self._place_rates(adjusted), list(self.design.groups), flags, ref_flags
        others = [g for g in self.design.groups if g != reference]
        ref_flags = flags.xs(reference, level="group")
        return cells, cells.sel(group=reference, drop=True), others, flags, ref_flags

    def _gaps(self, reference: str) -> pd.DataFrame:
        adjusted = self._adjusted
        target, ref, groups, flags, ref_flags = self._compared(reference, adjusted)
        parts = []
        for period in self.periods or (None,):
            excess = self._period_excess(reference, period)
            one = {} if period is None else {"period": period}
            period_flags = flags.xs(period, level="period") if one else flags
            period_ref = ref_flags.xs(period, level="period") if one else ref_flags
            period_ref = xr.DataArray(period_ref.reindex(target["area"].to_numpy()).to_numpy(),
                                      dims="area", coords={"area": target["area"]})  # fmt: skip
            table = tables.gap_table(target.sel(one), ref.sel(one), excess, groups, period_flags,
                                     period_ref, reference, self.spec.output.interval,
                                     self.spec.flags)  # fmt: skip
            if one:
                table.insert(2, "period", period)
            parts.append(table)
        table = pd.concat(parts, ignore_index=True)
        table["rate_basis"] = RATE_BASIS[adjusted]
        return tables.with_names(table, self.inputs)

    def _period_excess(self, reference: str, period) -> xr.DataArray:
        """Excess events of one period's cells (chain, draw, area, group), computed from that
        period's rows only, so memory grows with one period, not all of them (all without time)."""
        if period is None:
            return labelled_cells(self._excess(reference), self.inputs, self.design)
        position = self.periods.index(period)
        grid, rows = self.design.grid.pooled(position, position, period)
        draws = posterior.excess_events(self._stratum_rates()[..., rows], grid, self.spec.per,
                                        None if reference == ALL_GROUPS else reference)  # fmt: skip
        cells = posterior.labelled(draws).sel(period=period, drop=True)
        return cells.sel(area=list(self.inputs.graph.ids), group=list(self.design.groups))

    def _place_rates(self, adjusted: bool) -> xr.DataArray:
        rates = posterior.labelled(self.rate_draws(self._with_period("area"), adjusted))
        return rates.sel(area=list(self.inputs.graph.ids))

    def _excess(self, reference: str) -> xr.DataArray:
        return posterior.excess_events(self._stratum_rates(), self.design.grid, self.spec.per,
                                       None if reference == ALL_GROUPS else reference)  # fmt: skip

    def overall(self, reference: str | None = None) -> pd.DataFrame:
        """Map-wide rate of each group and its ratio to the reference group, with intervals (per
        period in a space–time fit).

        Columns are named as in `estimates`: `mean`, `lower`, `upper`, … are the group's rate over
        its own population mix; with an age stratum the age-adjusted rate follows as `adj_*`, and
        the ratios (`rate_basis` says which) compare the age-adjusted rates."""
        reference = reference or self.reference_group
        adjusted = self._adjusted
        unit = self._with_period("group")
        table = tables.with_adjusted(
            self.unit_table(unit), self.unit_table(unit, True) if adjusted else None
        )
        draws = posterior.flatten(self.rate_draws(unit, adjusted))
        reference_of = pd.MultiIndex.from_frame(table[list(unit)]).get_indexer(
            pd.MultiIndex.from_frame(table[list(unit)].assign(group=reference))
        )
        ref = draws[:, reference_of]
        ratio = draws / ref
        table["reference"] = reference
        tail = (1.0 - self.spec.output.interval) / 2.0
        table["ratio_lower"], table["ratio_median"], table["ratio_upper"] = quantiles(
            ratio, (tail, 0.5, 1.0 - tail)
        )
        table["prob_higher"] = (draws > ref).mean(axis=0, dtype=float)
        table["rate_basis"] = RATE_BASIS[adjusted]
        return table.rename(columns={"exposure": self.spec.exposure})

    def _period_range(self, first, last) -> tuple:
        if not self.periods:
            raise SaeInputError(
                "trends, pooled periods and inequality over time need a space–time fit: name the "
                'period column in the spec ([data] time = "year").'
            )
        first = self.periods[0] if first is None else first
        last = self.periods[-1] if last is None else last
        unknown = [p for p in (first, last) if p not in self.periods]
        if unknown or self.periods.index(first) >= self.periods.index(last):
            raise SaeInputError(
                f"periods {first!r} to {last!r}: give two periods of the fit, the first earlier; "
                f"its periods are {self.periods[0]} to {self.periods[-1]}."
            )
        return first, last

    def _cell_flags(self, adjusted: bool) -> pd.Series:
        return self.unit_table(self.cell, adjusted).set_index(list(self.cell))["flag"]

    def trends(self, first=None, last=None) -> pd.DataFrame:
        """Space–time fits: the change of each cell's rate from period `first` to `last` (default
        the first and last periods): ratio, difference, P(decline) and flag (`sae.trends`)."""
        first, last = self._period_range(first, last)
        adjusted = self._adjusted
        return self._cached(("trends", first, last), lambda: tables.with_names(
            trends.trend_table(self.rates(adjusted), self._cell_flags(adjusted), first, last,
                               self.spec.output.interval, self.spec.flags)
            .assign(rate_basis=RATE_BASIS[adjusted]), self.inputs)).copy()  # fmt: skip

    def gap_trends(self, reference: str | None = None, first=None, last=None) -> pd.DataFrame:
        """Space–time fits: the change of each gap (rate ratio and difference against
        `reference`) from `first` to `last`, with P(narrowing) and flag (`sae.trends`)."""
        first, last = self._period_range(first, last)
        reference = self._checked_reference(reference)
        return self._cached(("gap trends", reference, first, last),
                            lambda: self._gap_trends(reference, first, last)).copy()  # fmt: skip

    def _gap_trends(self, reference: str, first, last) -> pd.DataFrame:
        adjusted = self._adjusted
        cells, ref, groups, flags, ref_flags = self._compared(reference, adjusted)
        table = trends.gap_trend_table(cells.sel(group=groups), ref, reference, flags, ref_flags,
                                       first, last,
                                       self.spec.output.interval, self.spec.flags)  # fmt: skip
        return tables.with_names(table.assign(rate_basis=RATE_BASIS[adjusted]), self.inputs)

    def pooled(self) -> pd.DataFrame:
        """Space–time fits: estimates for the combined periods of `[output] pool`, from the same
        draws: each cell's rate over a pool is Σ_t E_t θ_t / Σ_t E_t (its years weighted by
        their population; age-adjusted in `adj_*` as the estimates are). `period` holds the
        pool's label ("2013-2017"); empty without pools."""
        return self._cached(("pooled",), lambda: pd.concat(
            [self._pooled(pool) for pool in self.spec.output.pool], ignore_index=True)
            if self.spec.output.pool else pd.DataFrame()).copy()  # fmt: skip

    def _pooled(self, pool) -> pd.DataFrame:
        first, last = (self.periods.index(p) for p in self._period_range(pool.first, pool.last))
        grid, rows = self.design.grid.pooled(first, last, pool.label)
        frame = self.inputs.cells.frame
        inside = frame["period_index"].between(first, last)
        cells = dataclasses.replace(self.inputs.cells,
                                    frame=frame[inside].assign(period=pool.label))  # fmt: skip
        inputs = dataclasses.replace(self.inputs, cells=cells)
        stratum = self._stratum_rates()[..., rows]

        def table(adjusted: bool) -> pd.DataFrame:
            age = self.spec.output.age_stratum if adjusted else None
            draws = posterior.unit_rates(stratum, grid, grid.cell, age, self.inputs.age_weights)
            return self._summary_table(draws, grid, rows, inputs, grid.cell, adjusted)

        adjusted = table(True) if self._adjusted else None
        return tables.estimates_table(table(False), adjusted, self.spec.exposure,
                                      self.spec.model.family == "gaussian", inputs)  # fmt: skip

    def inequality(self, reference: str | None = None) -> pd.DataFrame:
        """Space–time fits: per place (each area, and "all areas") × group × period against the
        reference group: rate difference, rate ratio, excess events and the attributable fraction
        PAR, with intervals and flags (`sae.inequality`)."""
        reference = self._checked_reference(reference, places=False)
        return self._cached(("inequality", reference),
                            lambda: self._inequality(reference)).copy()  # fmt: skip

    def _inequality(self, reference: str) -> pd.DataFrame:
        adjusted = self._adjusted
        rates, excess, events, flags = self._place_measures(reference, adjusted)
        table = inequality.measure_table(rates, excess, events, reference, flags,
                                         self.spec.output.interval, self.spec.flags)  # fmt: skip
        return tables.with_names(table.assign(rate_basis=RATE_BASIS[adjusted]), self.inputs)

    def cumulative_excess(self, reference: str | None = None) -> pd.DataFrame:
        """Space–time fits: excess events summed over all periods, per place and group."""
        reference = self._checked_reference(reference, places=False)
        _, excess, events, flags = self._place_measures(reference, self._adjusted)
        return tables.with_names(inequality.cumulative_excess(
            excess, events, flags, reference, self.spec.output.interval, self.spec.flags), self.inputs)  # fmt: skip

    def theil(self) -> pd.DataFrame:
        """Space–time fits: Theil's T across the groups per place (each area, "all areas") and
        period, with its interval."""
        self._period_range(None, None)
        adjusted = self._adjusted
        rates, _, _, flags = self._place_measures(self.reference_group, adjusted)
        exposure = self.design.grid.rows.groupby(list(self.cell))["exposure"].sum().to_xarray()
        population = inequality.with_map(exposure, exposure.sum("area"))
        population = population.sel(area=rates["area"], group=rates["group"])
        table = inequality.theil_table(rates, population, flags, self.spec.output.interval)
        return tables.with_names(table.assign(rate_basis=RATE_BASIS[adjusted]), self.inputs)

    def _place_measures(self, reference: str, adjusted: bool):
        """Rates, excess events and expected events per area and for the whole map (area
        `inequality.ALL_AREAS`), dims (chain, draw, area, group, period), and their flags;
        computed once per reference."""
        self._period_range(None, None)
        return self._cached(("place measures", reference, adjusted),
                            lambda: self._place_measures_of(reference, adjusted))  # fmt: skip

    def _place_measures_of(self, reference: str, adjusted: bool):
        group_period = ("group", "period")
        whole = posterior.labelled(self.rate_draws(group_period, adjusted))
        whole = whole.sel(group=list(self.design.groups), period=list(self.periods))
        rates = inequality.with_map(self.rates(adjusted), whole)
        excess = labelled_cells(self._excess(reference), self.inputs, self.design)
        events = labelled_cells(posterior.expected_events(self._stratum_rates(), self.design.grid,
                                                          self.spec.per), self.inputs, self.design)  # fmt: skip
        excess = inequality.with_map(excess, excess.sum("area"))
        events = inequality.with_map(events, events.sum("area"))
        map_flags = self.unit_table(group_period, adjusted).assign(area=inequality.ALL_AREAS)
        flags = pd.concat(
            [map_flags.set_index(list(self.cell))["flag"], self._cell_flags(adjusted)]
        )
        return rates, excess, events, flags

    def inference_data(self) -> az.InferenceData:
        """The draws with the data behind them, for ArviZ (`az.loo`, `az.plot_ppc`, …):
        posterior, observed_data, constant_data, log_likelihood and posterior_predictive, rows
        labelled by their keys (`sae.inference_data`). What `posterior.nc` holds."""
        from sae.inference_data import complete_inference_data

        return self._cached(("inference data",), lambda: complete_inference_data(self))

    def plot_estimates(self, **overrides):
        """The estimates map with this fit's defaults: the age-adjusted rate when the data have an
        age stratum, its units, title and a subtitle that says what is mapped (the latest period
        of a space–time fit). Any argument of `sae.maps.plot_estimates` overrides them (`ax=` to
        draw into a figure of your own). Returns the Figure."""
        from sae.fit_maps import estimates_figure

        return estimates_figure(self, **overrides)

    def plot_gaps(self, reference: str | None = None, **overrides):
        """The gaps map (rate ratio and P(higher)) against `reference` with this fit's defaults
        (basis, interval, gap thresholds); arguments of `sae.maps.plot_gaps` override them."""
        from sae.fit_maps import gaps_figure

        return gaps_figure(self, reference, **overrides)

    def to_geodataframe(self, reference: str | None = None) -> gpd.GeoDataFrame:
        """The estimates joined to the polygons, one row per area × group (× period), with the
        gap against `reference` (columns prefixed `gap_`) beside each group's estimate: for GIS
        work. Written as `maps/estimates.gpkg` with the maps."""
        from sae.geo_table import estimates_geodataframe

        return estimates_geodataframe(self, reference)

    def summary(self) -> str:
        """What an epidemiologist asks first: the model, the data, the draws' quality, the flags."""
        from sae.summary import fit_summary

        return fit_summary(self)

    def group_correlations(self) -> pd.DataFrame:
        """With `group_effects = "mcar"`: the posterior correlation of each pair of groups' area
        deviations (mean, median, the spec's interval, P(positive)); empty otherwise."""
        columns = ["group", "other_group", "mean", "median", "lower", "upper", "prob_positive"]
        if "group_area_correlation" not in self.idata.posterior:
            return pd.DataFrame(columns=columns)
        draws = self.idata.posterior["group_area_correlation"].stack(sample=("chain", "draw"))
        tail = (1.0 - self.spec.output.interval) / 2.0
        rows = []
        for a, b in itertools.combinations(self.design.groups, 2):
            values = draws.sel(group=a, other_group=b).to_numpy()
            lower, median, upper = np.quantile(values, [tail, 0.5, 1.0 - tail])
            rows.append([a, b, values.mean(), median, lower, upper, (values > 0).mean()])
        return pd.DataFrame(rows, columns=columns)

    def check(self) -> dict:
        """Model checks (`sae.checks`): PSIS-LOO for comparing models on the same data; for count
        models posterior predictive p-values (dispersion, zeros, largest count, totals by group
        and stratum), the randomised LOO-PIT with its uniformity test, Moran's I of the area
        residuals, and Moran's I of each group's deviations (spatial structure left in iid group
        effects)."""
        from sae import checks

        if self.spec.model.unknown_group_odds is not None:
            raise SaeInputError(
                "the model checks assume events of unknown group are missing at random; this fit "
                "sets [model] unknown_group_odds, a sensitivity analysis: compare its estimates "
                "and gaps with the fit without it."
            )
        result = {"loo": checks.loo(self)}
        if self.spec.model.family != "gaussian":
            result["posterior_predictive"] = checks.posterior_predictive(self)
            result["loo_pit"] = checks.loo_pit(self)
            if self.inputs.graph.edges.size:  # Moran's I needs neighbours
                result["residual_morans_i"] = checks.residual_morans_i(self)
                result["group_deviation_morans_i"] = checks.group_deviation_morans_i(self)
        return result

    def save(
        self, directory: str | Path, force: bool = False, maps: bool = False, report: bool = False
    ) -> Path:
        """Write the fit to a folder, atomically.

        Parameters
        ----------
        directory : str or Path
            The results folder: posterior.nc, estimates.csv (and gaps with groups),
            diagnostics.json, spec.toml, provenance.json and the inputs `sae.load` needs.
        force : bool
            Replace an earlier sae result there (never a folder sae did not write).
        maps, report : bool
            Also draw the maps (maps/) and write report.html.

        Returns
        -------
        Path
            The folder. If a map or the report fails, the rest is saved and `SaeOutputError` says
            how to finish.
        """
        from sae.results import save_results

        self.directory = save_results(self, Path(directory), force=force, maps=maps, report=report)
        return self.directory


def labelled_cells(draws: xr.DataArray, inputs: Inputs, design: Design) -> xr.DataArray:
    """(chain, draw, unit) cell draws → (chain, draw, area, group[, period]) in graph, group and
    period order."""
    cells = posterior.labelled(draws)
    order = {"area": list(inputs.graph.ids), "group": list(design.groups)}
    if design.periods:
        order["period"] = list(design.periods)
    if all(list(cells[key].to_numpy()) == labels for key, labels in order.items()):
        return cells.transpose("chain", "draw", *order)  # already in order: no copy
    return cells.sel(order)


def design_for(spec: Spec, inputs: Inputs, coding=None) -> Design:
    """The model arrays; Fay–Herriot specs pass their transform, saved fits their coding."""
    transform = spec.model.transform if spec.model.family == "gaussian" else None
    if coding is None:
        coding = fixed_effect_coding(inputs.cells.frame, inputs.cells, spec.model.strata_by_group,
                                     linear_trend(spec))  # fmt: skip
    return build_design(inputs.cells, inputs.graph, inputs.areas, spec.data.area_id, transform,
                        coding)  # fmt: skip


def linear_trend(spec: Spec) -> str:
    """Which straight-line trends are fixed effects: those second-order walks leave out."""
    if spec.data.time is None:
        return "none"
    if spec.model.group_trend == "rw2":
        return "by_group"
    return "shared" if spec.model.trend == "rw2" else "none"


def fit(
    spec: Spec | str | Path,
    cells: pd.DataFrame | str | Path | None = None,
    areas: gpd.GeoDataFrame | str | Path | None = None,
    progress: bool = True,
) -> Fit:
    """Validate the inputs, build the model, compute its posterior and judge the draws.

    Parameters
    ----------
    spec : Spec, str or Path
        A spec, or the path of a TOML spec file.
    cells : DataFrame, str or Path, optional
        The cells table, in place of the spec's [data] cells.
    areas : GeoDataFrame, str or Path, optional
        The polygons, in place of the spec's [data] areas.
    progress : bool
        Show NUTS's progress bar, and log the Laplace engine's steps at INFO on the
        "sae.laplace" logger (at DEBUG when False).

    Returns
    -------
    Fit
        The draws with the spec, inputs, design and diagnostics; `fit.seconds` accounts for the
        whole call. Bad input raises `SaeInputError` before any sampling.
    """
    start = time.perf_counter()
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    inputs = load_inputs(spec, cells=cells, areas=areas)
    return fit_inputs(spec, inputs, progress, start)


def fit_inputs(
    spec: Spec, inputs: Inputs, progress: bool = True, start: float | None = None
) -> Fit:
    """Build the model from validated inputs (see `sae.inputs.load_inputs`), infer, judge."""
    start = time.perf_counter() if start is None else start
    design = design_for(spec, inputs)
    seconds = {"prepare": time.perf_counter() - start}
    idata, diagnostics, method_seconds = infer(spec, design, inputs.graph, progress)
    seconds |= method_seconds
    warn_if_untrustworthy(diagnostics, spec.flags)
    seconds["total"] = time.perf_counter() - start
    return Fit(spec, inputs, design, idata, diagnostics, seconds)


def load(directory: str | Path) -> Fit:
    """Restore a fit saved with `Fit.save`.

    Parameters
    ----------
    directory : str or Path
        A folder written by `Fit.save` or `sae fit`; nothing outside it is read.

    Returns
    -------
    Fit
        The same fit: draws, inputs, design coding, diagnostics and timings.
    """
    from sae.store import read_core

    spec, inputs, coding, idata, diagnostics, seconds = read_core(Path(directory))
    design = design_for(spec, inputs, coding)
    return Fit(spec, inputs, design, idata, diagnostics, seconds, Path(directory))
