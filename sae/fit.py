"""The `Fit`: posterior draws with the spec and data that produced them, and the tables from them.

fit = sae.fit("models/pennsylvania_lung_race.toml")
fit.estimates()      # one row per area × group: estimate, interval, RSE, flag, flag_reason
fit.save("out/pennsylvania")
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from sae import bym2, sampling, transforms
from sae.design import Design, build_design
from sae.errors import SaeInputError
from sae.gaps import ALL_GROUPS, GAP_COLUMNS, compare_draws, interval_bounds
from sae.inputs import Inputs, load_inputs
from sae.predictor import linear_predictor
from sae.reliability import flag_estimates, flag_gaps
from sae.spec import Spec, load_spec

CELL = ("area", "group")
RATE_BASIS = {False: "crude mix", True: "age-adjusted"}
DIRECT_COLUMNS = (
    "area", "group", "direct", "direct_se", "mean", "median", "sd",
    "lower", "upper", "rse", "flag", "flag_reason", "shrinkage",
)  # fmt: skip
ESTIMATE_COLUMNS = (
    "area",
    "group",
    "observed",
    "{exposure}",
    "crude",
    "mean",
    "median",
    "sd",
    "lower",
    "upper",
    "rse",
    "flag",
    "flag_reason",
)


@dataclass(eq=False)
class Fit:
    """What was learned: draws (ArviZ InferenceData) with the spec, inputs and design behind them."""

    spec: Spec
    inputs: Inputs
    design: Design
    idata: az.InferenceData
    diagnostics: dict
    seconds: dict = field(default_factory=dict)
    _memo: dict = field(default_factory=dict, init=False, repr=False)

    def memo(self, key: tuple, compute):
        """Derived draws and tables are computed once per fit (gaps, maps and the report share them)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def stratum_draws(self) -> np.ndarray:
        """Draws of every grid row's rate (per `spec.per`): array (chain, draw, row), cached."""
        return self.memo(("stratum draws",), self.compute_stratum_draws)

    def compute_stratum_draws(self) -> np.ndarray:
        posterior = self.idata.posterior
        grid = self.design.grid
        names = [name for name in posterior.data_vars if "draw" in posterior[name].dims]
        chains = []
        for chain in range(posterior.sizes["chain"]):
            draws = {name: posterior[name].isel(chain=chain).to_numpy() for name in names}
            params = bym2.posterior_params(
                draws, self.design, self.inputs.graph, self.spec.model.group_effects
            )
            eta = linear_predictor(params, grid.area, grid.group, grid.X)
            rates = inverse_link(eta, self.spec.model.family, self.spec.model.transform)
            chains.append(rates * self.spec.per)
        return np.stack(chains)

    def rate_draws(self, unit: tuple[str, ...] = CELL, adjusted: bool = False) -> xr.DataArray:
        """Posterior draws of each unit's rate, dims (chain, draw, unit), labelled by the unit keys.

        `unit` is ("area", "group") for cells, ("area",) for a place's all-groups rate, ("group",)
        for map-wide group rates. Strata are combined with the unit's own exposure mix (so rates
        are comparable with crude rates) or, with `adjusted`, standardised by age (`sae.standardize`).
        """
        return self.memo(
            ("rate draws", unit, adjusted), lambda: self.compute_rate_draws(unit, adjusted)
        )

    def compute_rate_draws(self, unit: tuple[str, ...], adjusted: bool) -> xr.DataArray:
        age = self.spec.output.age_stratum if adjusted else None
        units, matrix = self.design.grid.aggregation(unit, age, self.inputs.age_weights)
        draws = weighted_sum(self.stratum_draws(), matrix)
        coords = {key: ("unit", units[key].to_numpy()) for key in unit}
        return xr.DataArray(draws, dims=("chain", "draw", "unit"), coords=coords, name="rate")

    def unit_table(self, unit: tuple[str, ...], adjusted: bool = False) -> pd.DataFrame:
        """Observed, exposure, crude rate, posterior summaries and flags for each unit (a copy)."""
        table = self.memo(
            ("unit table", unit, adjusted), lambda: self.compute_unit_table(unit, adjusted)
        )
        return table.copy()

    def compute_unit_table(self, unit: tuple[str, ...], adjusted: bool) -> pd.DataFrame:
        draws = self.rate_draws(unit, adjusted)
        gaussian = self.spec.model.family == "gaussian"
        if gaussian:
            table = direct_by_unit(self.inputs, draws, unit)
        else:
            table = observed_by_unit(self.inputs, draws, unit)
            exposure = table["exposure"].where(table["exposure"] > 0)
            table["crude"] = table["observed"] / exposure * self.spec.per
        table = pd.concat([table, summarise_draws(draws, self.spec.output.interval)], axis=1)
        if gaussian:  # posterior analogue of γ_d: the weight on the direct estimate
            table["shrinkage"] = table["sd"] ** 2 / table["direct_se"] ** 2
        table["has_data"] = table["exposure"] > 0
        flags = flag_estimates(table, self.spec.flags, self.diagnostics["divergences"])
        return pd.concat([table, flags], axis=1)

    def estimates(self) -> pd.DataFrame:
        """One row per area × group, every row with its interval and reliability flag.

        With an age stratum ([output] age_stratum) the age-adjusted rate follows in `adj_*` columns.
        """
        return self.memo(("estimates",), self.compute_estimates).copy()

    def compute_estimates(self) -> pd.DataFrame:
        table = self.unit_table(CELL)
        if self.spec.output.age_stratum:
            adjusted = self.unit_table(CELL, adjusted=True)
            for column in ("mean", "lower", "upper", "rse", "flag", "flag_reason"):
                table[f"adj_{column}"] = adjusted[column]
        table = table.rename(columns={"exposure": self.spec.exposure})
        gaussian = self.spec.model.family == "gaussian"
        columns = DIRECT_COLUMNS if gaussian else ESTIMATE_COLUMNS
        if gaussian:
            table = table.drop(columns=["observed"])
        first = [c.format(exposure=self.spec.exposure) for c in columns]
        return with_names(table[first + [c for c in table.columns if c not in first]], self.inputs)

    @property
    def reference_group(self) -> str:
        """The spec's reference group, else the group with the largest exposure (settled, and
        checked, when the inputs were loaded)."""
        return self.inputs.reference_group

    def gaps(self, reference: str | None = None) -> pd.DataFrame:
        """One row per area × group against `reference`: a group, or ALL_GROUPS (the place's
        all-groups rate). Age-adjusted rates are used whenever the data have an age stratum."""
        reference = reference or self.reference_group
        adjusted = self.spec.output.age_stratum is not None
        cells = self.unit_table(CELL, adjusted)
        if reference == ALL_GROUPS:
            places = self.unit_table(("area",), adjusted).set_index("area")
            target = cells
            ref_flag = places.loc[target["area"], "flag"].reset_index(drop=True)
            ref_draws = flatten(self.rate_draws(("area",), adjusted))[
                :, places.index.get_indexer(target["area"])
            ]
        else:
            if reference not in self.design.groups:
                raise SaeInputError(
                    f"reference {reference!r} is not a group ({list(self.design.groups)}) "
                    f"nor {ALL_GROUPS!r}."
                )
            lookup = cells.set_index(["area", "group"])
            target = cells[cells["group"] != reference].reset_index(drop=True)
            ref_rows = lookup.index.get_indexer(
                pd.MultiIndex.from_arrays([target["area"], [reference] * len(target)])
            )
            ref_flag = cells["flag"].iloc[ref_rows].reset_index(drop=True)
            ref_draws = flatten(self.rate_draws(CELL, adjusted))[:, ref_rows]
        target_rows = cells.set_index(["area", "group"]).index.get_indexer(
            pd.MultiIndex.from_frame(target[["area", "group"]])
        )
        target_draws = flatten(self.rate_draws(CELL, adjusted))[:, target_rows]
        table = compare_draws(target_draws, ref_draws, self.spec.output.interval)
        excess = flatten(self.excess_draws(reference))[:, target_rows]
        table["excess"] = excess.mean(axis=0)
        table["excess_lower"], table["excess_upper"] = interval_bounds(
            excess, self.spec.output.interval
        )
        table.insert(0, "area", target["area"].to_numpy())
        table.insert(1, "group", target["group"].to_numpy())
        table.insert(2, "reference", reference)
        flags = flag_gaps(
            table["prob_higher"],
            target["flag"].reset_index(drop=True),
            ref_flag,
            self.spec.flags,
            ratio_defined=table["ratio_mean"].notna(),
        )
        table = pd.concat([table, flags], axis=1)
        table["rate_basis"] = RATE_BASIS[adjusted]
        return with_names(table[list(GAP_COLUMNS) + ["rate_basis"]], self.inputs)

    def excess_draws(self, reference: str) -> xr.DataArray:
        """Expected excess events per cell: Σ_k exposure_igk (θ_igk − θ_irk) / per over the cell's
        own strata, so the comparison is made within strata (no age-mix confounding)."""
        grid = self.design.grid
        strata = list(grid.strata)
        if reference == ALL_GROUPS:
            units, matrix = grid.aggregation(("area", *strata))
            ref_rates = weighted_sum(self.stratum_draws(), matrix)
        else:
            units = grid.rows[grid.rows["group"] == reference][["area", *strata]]
            ref_rates = self.stratum_draws()[:, :, units.index.to_numpy()]
            units = units.reset_index(drop=True)
        keys = ["area", *strata]
        lookup = pd.MultiIndex.from_frame(units[keys]).get_indexer(
            pd.MultiIndex.from_frame(grid.rows[keys])
        )
        difference = (self.stratum_draws() - ref_rates[:, :, lookup]) / self.spec.per
        cells, _ = grid.aggregation(CELL)
        index = pd.MultiIndex.from_frame(cells).get_indexer(
            pd.MultiIndex.from_frame(grid.rows[list(CELL)])
        )
        to_cell = sp.csr_array(
            (grid.rows["exposure"].to_numpy(), (np.arange(len(grid.rows)), index)),
            shape=(len(grid.rows), len(cells)),
        )
        return xr.DataArray(weighted_sum(difference, to_cell), dims=("chain", "draw", "unit"))

    def overall(self, reference: str | None = None) -> pd.DataFrame:
        """Map-wide rate of each group (exposure-weighted over all areas; age-adjusted when the data
        have an age stratum) and its ratio to the reference group, with intervals."""
        reference = reference or self.reference_group
        adjusted = self.spec.output.age_stratum is not None
        table = self.unit_table(("group",), adjusted)
        draws = flatten(self.rate_draws(("group",), adjusted))
        ref = draws[:, list(table["group"]).index(reference)][:, None]
        ratio = draws / ref
        table["reference"] = reference
        table["ratio_mean"] = ratio.mean(axis=0)
        table["ratio_lower"], table["ratio_upper"] = interval_bounds(
            ratio, self.spec.output.interval
        )
        table["prob_higher"] = (draws > ref).mean(axis=0)
        table["rate_basis"] = RATE_BASIS[adjusted]
        return table.rename(columns={"exposure": self.spec.exposure})

    def summary(self) -> str:
        """What an epidemiologist asks first: the model, the data, convergence, the flags."""
        graph = self.inputs.graph.summary()
        d = self.diagnostics
        counts = self.estimates()["flag"].value_counts()
        problems = sampling.convergence_problems(d, self.spec.flags)
        lines = [
            self.spec.title,
            f"  model: {self.spec.model.family} BYM2, group effects {self.spec.model.group_effects}, "
            f"priors {self.spec.model.priors}",
            f"  data: {len(self.inputs.cells.frame)} rows, {graph['n_areas']} areas, "
            f"{graph['n_edges']} edges, {graph['n_components']} component(s), islands: "
            f"{', '.join(graph['islands']) or 'none'}; groups: {', '.join(self.design.groups)}",
            f"  sampler: {d['chains']} chains × {d['draws']} draws; max R-hat {d['max_rhat']:.3f}, "
            f"min bulk ESS {d['min_ess_bulk']:.0f}, divergences {d['divergences']}"
            + (f"  NOT CONVERGED: {'; '.join(problems)}" if problems else ""),
            "  flags: "
            + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("reliable", "caution", "unreliable")),
        ]
        if len(self.design.groups) > 1:
            lines.append(self.gap_summary())
        return "\n".join(lines)

    def gap_summary(self) -> str:
        gaps, overall = self.gaps(), self.overall().set_index("group")
        counts = gaps["flag"].value_counts()
        rows = overall.drop(index=self.reference_group)
        ratios = "; ".join(
            f"{g} / {self.reference_group} {r.ratio_mean:.2f} [{r.ratio_lower:.2f}, {r.ratio_upper:.2f}]"
            for g, r in rows.iterrows()
        )
        return (
            f"  gaps ({gaps['rate_basis'].iloc[0]}): "
            + ", ".join(
                f"{counts.get(k, 0)} {k}" for k in ("clear", "possible", "uncertain", "unreliable")
            )
            + f"; map-wide {ratios}"
        )

    def check(self) -> dict:
        """Model checks (`sae.checks`): posterior predictive totals (count models), Moran's I of
        the area residuals (count models), and PSIS-LOO for comparing models on the same data."""
        from sae import checks

        result = {"loo": checks.loo(self)}
        if self.spec.model.family != "gaussian":
            result["posterior_predictive"] = checks.posterior_predictive(self)
            result["residual_morans_i"] = checks.residual_morans_i(self)
        return result

    def save(
        self, directory: str | Path, force: bool = False, maps: bool = False, report: bool = False
    ) -> Path:
        """Write posterior.nc, estimates.csv, diagnostics.json, spec.toml, provenance.json and the
        inputs needed to restore the fit, atomically. Refuses a non-empty directory unless `force`."""
        from sae.results import save_results

        return save_results(self, Path(directory), force=force, maps=maps, report=report)


def with_names(table: pd.DataFrame, inputs: Inputs) -> pd.DataFrame:
    """The table with a `name` column after `area` when the spec names an area_name column."""
    if inputs.names is None:
        return table
    named = table.copy()
    named.insert(1, "name", inputs.name_of(table["area"]).to_numpy())
    return named


def inverse_link(eta: np.ndarray, family: str, transform: str) -> np.ndarray:
    if family == "gaussian":
        return transforms.inverse(transform, eta)
    return 1.0 / (1.0 + np.exp(-eta)) if family == "binomial" else np.exp(eta)


def direct_by_unit(inputs: Inputs, draws: xr.DataArray, unit: tuple[str, ...]) -> pd.DataFrame:
    """Direct estimate and its standard error per unit: the weighted mean of the unit's direct
    estimates (weights: population, or equal), se = √(Σ w² ψ) / Σ w. `observed` is empty."""
    keys = pd.DataFrame({key: draws[key].to_numpy() for key in unit})
    frame = inputs.cells.frame
    data = frame[frame["estimate"].notna()]
    w = data["exposure"]
    parts = data[list(unit)].assign(
        wy=w * data["estimate"], w2v=w**2 * data["variance"], exposure=w
    )
    sums = parts.groupby(list(unit), as_index=False)[["wy", "w2v", "exposure"]].sum()
    table = keys.merge(sums, on=list(unit), how="left").fillna({"exposure": 0.0})
    return table.assign(
        direct=table["wy"] / table["exposure"],
        direct_se=np.sqrt(table["w2v"]) / table["exposure"],
        observed=np.nan,
    ).drop(columns=["wy", "w2v"])


def observed_by_unit(inputs: Inputs, draws: xr.DataArray, unit: tuple[str, ...]) -> pd.DataFrame:
    """Observed count and exposure summed over each unit's rows, in the order of `draws`' units."""
    keys = pd.DataFrame({key: draws[key].to_numpy() for key in unit})
    totals = inputs.cells.frame.groupby(list(unit), as_index=False)[["count", "exposure"]].sum()
    table = keys.merge(totals, on=list(unit), how="left").fillna({"count": 0, "exposure": 0.0})
    return table.rename(columns={"count": "observed"}).astype({"observed": np.int64})


def weighted_sum(draws: np.ndarray, matrix: sp.csr_array) -> np.ndarray:
    """(chain, draw, row) draws times a (row × unit) weight matrix → (chain, draw, unit)."""
    chains, samples, rows = draws.shape
    return (draws.reshape(chains * samples, rows) @ matrix).reshape(chains, samples, -1)


def flatten(draws) -> np.ndarray:
    """(chain, draw, unit) → (sample, unit)."""
    values = np.asarray(draws)
    return values.reshape(-1, values.shape[-1])


def summarise_draws(draws: xr.DataArray, interval: float) -> pd.DataFrame:
    """Mean, median, sd, equal-tailed interval, RSE, relative width, R-hat and bulk ESS per cell.

    Computed in blocks of cells so memory stays bounded on large maps.
    """
    values = np.asarray(draws)
    blocks = [
        summarise_block(values[:, :, start : start + CELLS_PER_BLOCK], interval)
        for start in range(0, values.shape[2], CELLS_PER_BLOCK)
    ]
    return pd.concat(blocks, ignore_index=True)


CELLS_PER_BLOCK = 2000


def summarise_block(values: np.ndarray, interval: float) -> pd.DataFrame:
    tail = (1.0 - interval) / 2.0
    flat = values.reshape(-1, values.shape[2])
    lower, median, upper = np.quantile(flat, [tail, 0.5, 1.0 - tail], axis=0)
    mean, sd = flat.mean(axis=0), flat.std(axis=0, ddof=1)
    dataset = xr.Dataset({"rate": (("chain", "draw", "cell"), values)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant draws give nan R-hat
        rhat = az.rhat(dataset)["rate"].to_numpy()
        ess = az.ess(dataset, method="bulk")["rate"].to_numpy()
    return pd.DataFrame(
        {
            "mean": mean,
            "median": median,
            "sd": sd,
            "lower": lower,
            "upper": upper,
            "rse": sd / mean,
            "relative_width": (upper - lower) / mean,
            "rhat": rhat,
            "ess_bulk": ess,
        }
    )


def load(directory: str | Path) -> Fit:
    """Restore a fit saved with `Fit.save`; it needs nothing outside `directory`."""
    from sae.store import read_core

    spec, inputs, idata, diagnostics, seconds = read_core(Path(directory))
    return Fit(spec, inputs, design_for(spec, inputs), idata, diagnostics, seconds)


def design_for(spec: Spec, inputs: Inputs) -> Design:
    """The model arrays; Fay–Herriot specs pass their transform."""
    transform = spec.model.transform if spec.model.family == "gaussian" else None
    return build_design(inputs.cells, inputs.graph, inputs.areas, spec.data.area_id, transform)


def fit(
    spec: Spec | str | Path,
    cells: pd.DataFrame | None = None,
    areas: gpd.GeoDataFrame | None = None,
    progress: bool = True,
) -> Fit:
    """Validate the inputs, build the model, sample it and judge convergence.

    `spec` is a `Spec` or the path of a TOML spec; `cells` and `areas` replace the spec's files.
    """
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    start = time.perf_counter()
    inputs = load_inputs(spec, cells=cells, areas=areas)
    return fit_inputs(spec, inputs, progress, start)


def fit_inputs(
    spec: Spec, inputs: Inputs, progress: bool = True, start: float | None = None
) -> Fit:
    """Build the model from validated inputs (see `sae.inputs.load_inputs`), sample, judge."""
    start = time.perf_counter() if start is None else start
    design = design_for(spec, inputs)
    model = bym2.build(design, inputs.graph, spec)
    seconds = {"prepare": time.perf_counter() - start}
    idata, sampler_seconds = sampling.sample(model, spec.sampler, progress=progress)
    seconds.update(sampler_seconds)
    diagnostics = sampling.diagnostics(idata, spec.flags)
    sampling.warn_if_not_converged(diagnostics, spec.flags)
    return Fit(spec, inputs, design, idata, diagnostics, seconds)
