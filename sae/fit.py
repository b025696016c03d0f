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
import xarray as xr

from sae import bym2, sampling
from sae.data import Inputs, load_inputs
from sae.design import Design, build_design
from sae.predictor import linear_predictor
from sae.reliability import flag_estimates
from sae.spec import Spec, load_spec

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
    _estimates: pd.DataFrame | None = field(default=None, repr=False)

    def rate_draws(self) -> xr.DataArray:
        """Posterior draws of every area × group cell's rate (per `spec.per`), dims chain, draw, cell.

        A cell's rate is the exposure-weighted mean of its strata's rates, so it is comparable with
        the crude rate; cells without exposure use their group's map-wide stratum mix.
        """
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
            rates = inverse_link(eta, self.spec.model.family) * self.spec.per
            chains.append((grid.to_cell.T @ rates.T).T)
        cells = grid.cells
        return xr.DataArray(
            np.stack(chains),
            dims=("chain", "draw", "cell"),
            coords={
                "chain": posterior["chain"].to_numpy(),
                "draw": posterior["draw"].to_numpy(),
                "area": ("cell", cells["area"].to_numpy()),
                "group": ("cell", cells["group"].to_numpy()),
            },
            name="rate",
        )

    def estimates(self) -> pd.DataFrame:
        """One row per area × group, every row with its interval and reliability flag."""
        if self._estimates is None:
            self._estimates = self.compute_estimates()
        return self._estimates.copy()

    def compute_estimates(self) -> pd.DataFrame:
        draws = self.rate_draws()
        table = observed_by_cell(self.inputs, self.design)
        table["crude"] = (
            table["observed"] / table["exposure"].where(table["exposure"] > 0) * self.spec.per
        )
        table = pd.concat([table, summarise_draws(draws, self.spec.output.interval)], axis=1)
        table["has_data"] = table["exposure"] > 0
        flags = flag_estimates(table, self.spec.flags, self.diagnostics["divergences"])
        table = pd.concat([table, flags], axis=1).rename(columns={"exposure": self.spec.exposure})
        first = [c.format(exposure=self.spec.exposure) for c in ESTIMATE_COLUMNS]
        return table[first + [c for c in table.columns if c not in first]]

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
        return "\n".join(lines)

    def save(self, directory: str | Path, force: bool = False) -> Path:
        """Write posterior.nc, estimates.csv, diagnostics.json, spec.toml, provenance.json and the
        inputs needed to restore the fit, atomically. Refuses a non-empty directory unless `force`."""
        from sae.store import save_fit

        return save_fit(self, Path(directory), force=force)


def inverse_link(eta: np.ndarray, family: str) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-eta)) if family == "binomial" else np.exp(eta)


def observed_by_cell(inputs: Inputs, design: Design) -> pd.DataFrame:
    """Observed count and exposure summed over strata, for every area × group (0 without data)."""
    totals = inputs.cells.frame.groupby(["area", "group"])[["count", "exposure"]].sum()
    cells = design.grid.cells
    index = pd.MultiIndex.from_frame(cells)
    totals = totals.reindex(index, fill_value=0).reset_index(drop=True)
    return pd.DataFrame(
        {
            "area": cells["area"],
            "group": cells["group"],
            "observed": totals["count"].astype(np.int64),
            "exposure": totals["exposure"],
        }
    )


def summarise_draws(draws: xr.DataArray, interval: float) -> pd.DataFrame:
    """Mean, median, sd, equal-tailed interval, RSE, relative width, R-hat and bulk ESS per cell.

    Computed in blocks of cells so memory stays bounded on large maps.
    """
    values = draws.transpose("chain", "draw", "cell").to_numpy()
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
    design = build_design(inputs.cells, inputs.graph, inputs.areas, spec.data.area_id)
    model = bym2.build(design, inputs.graph, spec)
    seconds = {"prepare": time.perf_counter() - start}
    idata, sampler_seconds = sampling.sample(model, spec.sampler, progress=progress)
    seconds.update(sampler_seconds)
    diagnostics = sampling.diagnostics(idata, spec.flags)
    sampling.warn_if_not_converged(diagnostics, spec.flags)
    return Fit(spec, inputs, design, idata, diagnostics, seconds)
